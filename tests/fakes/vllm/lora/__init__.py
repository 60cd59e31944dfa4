"""FAKE vllm.lora (tests only)."""
