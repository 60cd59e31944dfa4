"""Training partitions: base model (registered at run time from ``settings.base_models``)
x corpus variant."""

import dagster as dg

from hum_dagster.corpus.mix import VARIANTS

CORPUS_VARIANTS = tuple(VARIANTS)
BASE_MODELS = "base_models"
base_model_partitions = dg.DynamicPartitionsDefinition(name=BASE_MODELS)
corpus_variant_partitions = dg.StaticPartitionsDefinition(list(VARIANTS))
training_partitions = dg.MultiPartitionsDefinition(
    {"base_model": base_model_partitions, "corpus_variant": corpus_variant_partitions}
)
