"""Assets of the ``sources`` group: ``raw_sources`` and ``source_quarantine``."""
