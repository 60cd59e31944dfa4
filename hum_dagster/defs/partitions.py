"""Partitions: one per catalog source."""

from __future__ import annotations

import dagster as dg

from hum_dagster.defs.settings import catalog

source_partitions = dg.StaticPartitionsDefinition(sorted(catalog()))
