"""The corpus stage: build (scan, de-duplicate, cut, decontaminate, split), mix, tokens, export, charts."""
