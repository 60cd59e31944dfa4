"""Model FLOPs utilisation (MFU) accounting for LoRA and full fine-tuning.

Per trained token, with N the weights of every matrix multiply (``nn.Linear`` weights:
attention, MLP, LM head and the LoRA A/B matrices; embedding lookups do no FLOPs), N_t
the trainable ones among them, L layers, d the hidden size and s the sequence length:

- ``lora`` (default): forward 2N, backward 2N for the activation gradients (they flow
  through the frozen weights too) plus 2N_t for the weight gradients of the trainable
  weights only: **(4N + 2N_t) per token**;
- ``6n``: the usual full fine-tuning estimate, **6N per token** (forward 2N, backward
  4N). For LoRA it counts weight gradients that are never computed, so it reads about
  1.5x higher than ``lora``; it is reported too, for comparison with papers that use it.

Both add the attention score/value products, which have no weights: 2 x 2·s·d per
layer forward (QK^T and AV), twice that backward, so **12·L·s·d per token** (as in
PaLM's MFU). Recomputation from gradient checkpointing is not counted (that would be
hardware FLOPs utilisation, not MFU).

MFU = achieved model FLOPs per second / (peak per device x devices). Peaks are dense
(no sparsity) bf16 figures from the vendors' data sheets.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

# Dense bf16 tensor-core peak, FLOP/s per device.
PEAK_BF16_FLOPS = {
    "H200": 989e12,
    "H100 SXM": 989e12,
    "H100 80GB HBM3": 989e12,  # torch's name for the SXM part
    "H100 NVL": 835e12,
    "H100 PCIe": 756e12,
    "H100": 989e12,
    "GH200": 989e12,
    "B200": 2250e12,
    "A100": 312e12,
    "L40S": 362e12,
    "A10G": 70e12,
    "L4": 121e12,
}


@dataclass(frozen=True)
class FlopsModel:
    matmul_params: int  # N
    trainable_matmul_params: int  # N_t
    layers: int
    hidden: int
    seq_len: float
    formula: str = "lora"

    def per_token(self, formula: str | None = None) -> float:
        formula = formula or self.formula
        n, nt = self.matmul_params, self.trainable_matmul_params
        weights = 6 * n if formula == "6n" else 4 * n + 2 * nt
        attention = 12 * self.layers * self.seq_len * self.hidden
        return float(weights + attention)

    def describe(self) -> str:
        if self.formula == "6n":
            return "6N + 12*L*s*d per token"
        return "4N + 2N_trainable + 12*L*s*d per token"


def count_matmul_params(model: Any) -> tuple[int, int]:
    """(N, N_trainable) over ``nn.Linear`` weights; all parameters when there are none."""
    import torch

    total = trainable = 0
    seen: set[int] = set()
    for module in model.modules():
        if isinstance(module, torch.nn.Linear) and id(module.weight) not in seen:
            seen.add(id(module.weight))
            total += module.weight.numel()
            if module.weight.requires_grad:
                trainable += module.weight.numel()
    if total == 0:
        total = sum(p.numel() for p in model.parameters())
        trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    return total, trainable


def flops_model(model: Any, seq_len: float, formula: str = "lora") -> FlopsModel:
    total, trainable = count_matmul_params(model)
    config = getattr(model, "config", None)
    layers = int(getattr(config, "num_hidden_layers", 0) or 0)
    hidden = int(getattr(config, "hidden_size", 0) or 0)
    return FlopsModel(total, trainable, layers, hidden, float(seq_len), formula)


def device_peak_flops(override_tflops: float | None = None) -> tuple[float | None, str]:
    """(peak FLOP/s per device, device name); peak None on a CPU or an unknown GPU."""
    if override_tflops:
        name = "configured"
        try:
            import torch

            if torch.cuda.is_available():
                name = torch.cuda.get_device_name(0)
        except Exception:  # noqa: BLE001 - the name is only informative
            pass
        return override_tflops * 1e12, name
    import torch

    if not torch.cuda.is_available():
        return None, "cpu"
    name = torch.cuda.get_device_name(0)
    for key, value in PEAK_BF16_FLOPS.items():  # most specific names first
        if key.lower() in name.lower():
            return value, name
    return None, name


def mfu(tokens_per_s: float, per_token_flops: float, peak_per_device: float | None, devices: int):
    if not peak_per_device or tokens_per_s <= 0:
        return None
    return tokens_per_s * per_token_flops / (peak_per_device * max(1, devices))
