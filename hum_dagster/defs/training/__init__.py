"""Assets of the ``training`` group: base models, LoRA checkpoints, LlamaFactory configs."""
