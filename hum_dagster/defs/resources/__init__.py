"""Resources shared by every stage: settings, the LLM endpoint, the IO manager, launchers."""
