"""The ``hum`` command line: ``run``, ``dev``, ``sql``, ``audit``, ``convert``."""
