"""Assets of the ``corpus`` group: ``hum_corpus``."""
