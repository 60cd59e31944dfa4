"""The ``operations`` group: lineage audit, automation sensors and schedules."""
