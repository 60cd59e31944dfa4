"""LoRA fine-tuning of a base model on the exported Hum corpus.

``config`` (the paper's hyperparameters, JSON and LlamaFactory YAML), ``data`` (the
alpaca export read as prompt/completion examples), ``flops`` (MFU accounting),
``artifacts`` (outputs written locally or to ``s3://``, the record last) and ``entry``
(the Pipes entry point run wherever a launcher puts it). No Dagster imports here: the
entry point imports only ``dagster_pipes``; ``hum_dagster.defs.training.assets`` is the
Dagster side.
"""
