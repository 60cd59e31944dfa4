"""LoRA training throughput and MFU on a GPU (target: >= 45% MFU on an H100).

    python bench/lora_mfu.py --model /models/Meta-Llama-3-8B          # a local model folder
    python bench/lora_mfu.py --size 8b                                 # random Llama-3-8B shape
    python bench/lora_mfu.py --size 8b --batch 4 --seq-len 2048 --compile
    python bench/lora_mfu.py --size tiny --device cpu --steps 3        # smoke test, no GPU
    torchrun --standalone --nproc_per_node 8 bench/lora_mfu.py --size 8b   # one node, 8 GPUs (DDP)
    torchrun --standalone --nproc_per_node 2 bench/lora_mfu.py --size tiny --device cpu  # gloo smoke

No hub is reachable, so ``--model`` must be a local folder; without it a randomly
initialised Llama-architecture model of the chosen size is built from a config (the
FLOPs and memory traffic are those of the real model, so throughput and MFU are fair).
The loop is the training step the trainer runs: bf16 weights, LoRA (rank 64, alpha 64,
all linear layers, as in the paper) through PEFT, fused AdamW on the adapter, causal LM
loss on every token, optional gradient checkpointing. Warm-up steps are not timed.

FLOPs per token follow ``hum_dagster.train.flops``: (4N + 2N_trainable) + 12·L·s·d for
LoRA (frozen weights get no weight gradients) and 6N + 12·L·s·d, the full fine-tuning
convention, for comparison. Gradient-checkpointing recomputation is not counted.
Peak: ``--peak-tflops`` (default: the device's dense bf16 peak, 989 for an H100 SXM).

Under torchrun every rank trains its own random batch in DistributedDataParallel (NCCL
on GPUs, gloo on the CPU), so the all-reduce of the adapter gradients is in the timing;
tokens/s counts all ranks (``world x batch x seq_len`` per step, over the slowest rank's
time) and MFU divides by ``world`` peaks. Only rank 0 prints; the figures are printed,
never asserted.

What moves MFU on an H100: large micro-batches (``--batch``, ``--seq-len``), no
gradient checkpointing when memory allows, ``--attn flash_attention_2`` when flash-attn
is installed (sdpa otherwise), ``--compile``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

SIZES = {
    # Llama-3-8B
    "8b": dict(
        hidden_size=4096,
        intermediate_size=14336,
        num_hidden_layers=32,
        num_attention_heads=32,
        num_key_value_heads=8,
        vocab_size=128256,
        tie_word_embeddings=False,
    ),
    # Llama-2-7B
    "7b": dict(
        hidden_size=4096,
        intermediate_size=11008,
        num_hidden_layers=32,
        num_attention_heads=32,
        num_key_value_heads=32,
        vocab_size=32000,
        tie_word_embeddings=False,
    ),
    # Llama-3.2-3B / 1B
    "3b": dict(
        hidden_size=3072,
        intermediate_size=8192,
        num_hidden_layers=28,
        num_attention_heads=24,
        num_key_value_heads=8,
        vocab_size=128256,
        tie_word_embeddings=True,
    ),
    "1b": dict(
        hidden_size=2048,
        intermediate_size=8192,
        num_hidden_layers=16,
        num_attention_heads=32,
        num_key_value_heads=8,
        vocab_size=128256,
        tie_word_embeddings=True,
    ),
    "tiny": dict(
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        vocab_size=1000,
        tie_word_embeddings=True,
    ),
}


def build_model(args, dtype):
    import torch
    from transformers import AutoModelForCausalLM, LlamaConfig, LlamaForCausalLM

    if args.model:
        model = AutoModelForCausalLM.from_pretrained(
            args.model, dtype=dtype, attn_implementation=args.attn
        ).to(args.device)
        return model, f"{args.model}"
    config = LlamaConfig(
        **SIZES[args.size],
        max_position_embeddings=max(8192, args.seq_len),
        attn_implementation=args.attn,
    )
    torch.manual_seed(0)
    previous = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    try:
        with torch.device(args.device):
            model = LlamaForCausalLM(config)
    finally:
        torch.set_default_dtype(previous)
    return model, f"random Llama ({args.size})"


def init_distributed(device: str) -> tuple[int, int, int, str]:
    """(rank, local rank, world size, device) from torchrun's environment; one process: 0, 0, 1."""
    import torch
    import torch.distributed as dist

    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local = int(os.environ.get("LOCAL_RANK", "0"))
    if world == 1:
        return rank, local, world, device
    if device.startswith("cuda"):
        torch.cuda.set_device(local)
        device = f"cuda:{local}"
        dist.init_process_group("nccl", device_id=torch.device(device))
    else:
        dist.init_process_group("gloo")
    return rank, local, world, device


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", help="a local transformers model folder")
    parser.add_argument("--size", choices=sorted(SIZES), default="8b")
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--batch", type=int, default=4, help="sequences per step")
    parser.add_argument("--seq-len", type=int, default=2048)
    parser.add_argument("--steps", type=int, default=10, help="timed steps")
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--rank", type=int, default=64)
    parser.add_argument("--alpha", type=int, default=64)
    parser.add_argument("--grad-ckpt", action="store_true", help="gradient checkpointing")
    parser.add_argument("--attn", default="sdpa", help="sdpa | flash_attention_2 | eager")
    parser.add_argument("--compile", action="store_true", help="torch.compile the model")
    parser.add_argument("--peak-tflops", type=float, help="per device; default: known GPUs")
    parser.add_argument("--json", action="store_true", help="print one JSON line")
    args = parser.parse_args(argv)

    import torch
    from peft import LoraConfig, get_peft_model

    from hum_dagster.train.flops import device_peak_flops, flops_model, mfu

    on_gpu = args.device.startswith("cuda")
    if on_gpu and not torch.cuda.is_available():
        print(
            "no CUDA device: use --device cpu (and --size tiny) for a smoke test", file=sys.stderr
        )
        return 2
    rank, local, world, args.device = init_distributed(args.device)
    dtype = torch.bfloat16 if on_gpu else torch.float32
    model, what = build_model(args, dtype)
    model.config.use_cache = False
    if args.grad_ckpt:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
        model.enable_input_require_grads()
    model = get_peft_model(
        model,
        LoraConfig(
            r=args.rank,
            lora_alpha=args.alpha,
            lora_dropout=0.05,
            target_modules="all-linear",
            task_type="CAUSAL_LM",
        ),
    )
    trainable = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(trainable, lr=5e-5, weight_decay=1e-4, fused=on_gpu)
    step_model = model
    if world > 1:
        from torch.nn.parallel import DistributedDataParallel

        # LoRA on every linear layer: every trainable parameter gets a gradient each step
        step_model = DistributedDataParallel(
            model, device_ids=[local] if on_gpu else None, find_unused_parameters=False
        )
    step_model = torch.compile(step_model) if args.compile else step_model
    vocab = model.config.vocab_size
    generator = torch.Generator(device="cpu").manual_seed(rank)  # each rank its own batch
    batch = torch.randint(0, vocab, (args.batch, args.seq_len), generator=generator).to(args.device)

    def step():
        with torch.autocast(device_type="cuda", dtype=torch.bfloat16, enabled=on_gpu):
            loss = step_model(input_ids=batch, labels=batch).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        return loss

    def sync():
        if on_gpu:
            torch.cuda.synchronize()
        if world > 1:
            torch.distributed.barrier()

    model.train()
    for _ in range(args.warmup):
        step()
    sync()
    if on_gpu:
        torch.cuda.reset_peak_memory_stats()
    start = time.perf_counter()
    for _ in range(args.steps):
        loss = step()
    sync()
    seconds = time.perf_counter() - start
    max_memory = torch.cuda.max_memory_allocated() if on_gpu else 0
    if world > 1:  # the slowest rank's time, the largest rank's memory
        stats = torch.tensor([seconds, float(max_memory)], dtype=torch.float64)
        stats = stats.to(args.device if on_gpu else "cpu")
        torch.distributed.all_reduce(stats, op=torch.distributed.ReduceOp.MAX)
        seconds, max_memory = float(stats[0]), float(stats[1])

    tokens = world * args.batch * args.seq_len * args.steps
    tps = tokens / seconds
    flops = flops_model(model, args.seq_len, "lora")
    peak, device = device_peak_flops(args.peak_tflops)
    if world > 1 and on_gpu:
        torch.distributed.destroy_process_group()
    # gloo (CPU smoke runs) is left to interpreter exit: with torch 2.13 an explicit
    # destroy_process_group hung one rank at exit in 1 of 2 runs; without it, 14 of 14 exited
    if rank != 0:
        return 0
    result = {
        "model": what,
        "device": device,
        "world_size": world,
        "parameters": sum(p.numel() for p in model.parameters()),
        "trainable": sum(p.numel() for p in trainable),
        "batch": args.batch,
        "seq_len": args.seq_len,
        "steps": args.steps,
        "grad_ckpt": args.grad_ckpt,
        "attn": args.attn,
        "compile": args.compile,
        "seconds_per_step": round(seconds / args.steps, 4),
        "tokens_per_s": round(tps, 1),
        "tokens_per_s_per_device": round(tps / world, 1),
        "flops_per_token_lora": flops.per_token("lora"),
        "flops_per_token_6n": flops.per_token("6n"),
        "peak_tflops": peak / 1e12 if peak else None,
        "mfu": mfu(tps, flops.per_token("lora"), peak, world),
        "mfu_6n": mfu(tps, flops.per_token("6n"), peak, world),
        "max_memory_gib": round(max_memory / 2**30, 2) if on_gpu else None,
        "final_loss": round(loss.item(), 4),
    }
    if args.json:
        print(json.dumps(result))
    else:
        for key, value in result.items():
            if key in ("mfu", "mfu_6n") and value is not None:
                value = f"{100 * value:.1f}%"
            print(f"{key:>23}: {value}")
        if result["mfu"] is None:
            print(f"{'':>23}  (no MFU: unknown peak for {device}; pass --peak-tflops)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
