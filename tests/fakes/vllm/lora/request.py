"""FAKE vllm.lora.request (tests only): the LoRARequest shape the entry point builds."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class LoRARequest:
    lora_name: str
    lora_int_id: int
    lora_path: str
