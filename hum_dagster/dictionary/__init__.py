"""Schema dictionaries: per-label descriptions, variants, examples and candidates,
merged from the data (mined), curated seed files and LLM answers, with provenance on
every field value. No Dagster imports."""

from hum_dagster.dictionary.build import DictionaryReport, build_dictionary
from hum_dagster.dictionary.enrich import DESCRIBE_STEP, load_prompt, validate_description
from hum_dagster.dictionary.examples import EXAMPLES_STEP, validate_examples
from hum_dagster.dictionary.model import (
    DICTIONARY_COLUMNS,
    Example,
    LabelEntry,
    SchemaDictionary,
    Text,
    entry_key,
)
from hum_dagster.dictionary.seeds import SeedSet, load_seed_book, pid2name_seeds, select_seeds

__all__ = [
    "DESCRIBE_STEP",
    "DICTIONARY_COLUMNS",
    "DictionaryReport",
    "EXAMPLES_STEP",
    "Example",
    "LabelEntry",
    "SchemaDictionary",
    "SeedSet",
    "Text",
    "build_dictionary",
    "entry_key",
    "load_prompt",
    "load_seed_book",
    "pid2name_seeds",
    "select_seeds",
    "validate_description",
    "validate_examples",
]
