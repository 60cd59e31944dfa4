"""Checks of the ``dictionary`` group."""

import dagster as dg

from hum_dagster.defs.checks import check_result
from hum_dagster.defs.resources.llm import llm_asset_checks
from hum_dagster.defs.sources.partitions import source_partitions
from hum_dagster.dictionary import SchemaDictionary
from hum_dagster.dictionary.checks import COVERAGE_CHECK, undescribed_labels
from hum_dagster.dictionary.enrich import DESCRIBE_STEP
from hum_dagster.store.tables import Table


@dg.asset_check(
    asset="schema_dictionary",
    name=COVERAGE_CHECK,
    partitions_def=source_partitions,
    description="Every top-level label has at least one description (warns).",
)
def labels_have_descriptions(schema_dictionary: Table) -> dg.AssetCheckResult:
    rows = schema_dictionary.df.to_dicts()
    problems = undescribed_labels(SchemaDictionary.from_rows(rows)) if rows else []
    return check_result(problems, severity=dg.AssetCheckSeverity.WARN, rows=len(rows))


# the describe step (LLM-written descriptions and synonyms): requests answered, values
# accepted by the gates
llm_checks = llm_asset_checks("schema_dictionary", source_partitions, DESCRIBE_STEP)
