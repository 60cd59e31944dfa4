"""Zero-shot evaluation (DESIGN.md section 4): benchmarks, generation, metrics.

Library code only: no Dagster imports (``vllm_entry`` imports ``dagster_pipes`` only).
"""
