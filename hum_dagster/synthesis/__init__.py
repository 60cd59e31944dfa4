"""Instruction synthesis: pure functions over canonical records (no Dagster)."""
