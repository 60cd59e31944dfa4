"""Assets of the ``synthesis`` group: basic and compound instructions."""
