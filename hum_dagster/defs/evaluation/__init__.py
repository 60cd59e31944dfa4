"""Assets of the ``evaluation`` group: ``eval_scores`` and ``eval_report``."""
