"""The LLM layer: one client for every LLM step, with a persistent response cache."""
