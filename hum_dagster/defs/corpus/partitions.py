"""Corpus partitions: the full corpus and the paper's ablations (``corpus.mix.VARIANTS``)."""

import dagster as dg

from hum_dagster.corpus.mix import VARIANTS

corpus_partitions = dg.StaticPartitionsDefinition(list(VARIANTS))
