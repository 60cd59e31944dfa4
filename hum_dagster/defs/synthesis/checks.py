"""Checks of the ``synthesis`` group: one per validator check name, beside each asset.

Basic instructions: ``outputs_parse_with_own_labels``, ``spans_occur_in_input``. Each
compound asset gets one check per check name its strategy's validators emit
(``synthesis.strategies.STRATEGIES[...].validators``): a validator added there becomes a
check here with no other change. Error-severity checks are blocking.
"""

from collections.abc import Sequence

import dagster as dg

from hum_dagster.defs.checks import check_result, severity_of
from hum_dagster.defs.resources.llm import llm_asset_checks
from hum_dagster.defs.sources.partitions import source_partitions
from hum_dagster.defs.synthesis.compound import compound_key
from hum_dagster.defs.synthesis.partitions import compound_partitions
from hum_dagster.store.tables import Table, TableRef
from hum_dagster.synthesis.preferences_llm import PREFERENCE_STEP
from hum_dagster.synthesis.strategies import (
    BASIC_VALIDATORS,
    ERROR,
    STRATEGIES,
    ValidationContext,
    Validator,
    validate_rows,
)

BATCH_ROWS = 20_000


def _rows(table: TableRef):
    """A stored table's rows as dicts, a slice at a time."""
    for batch in table.scan().collect_batches(chunk_size=BATCH_ROWS):
        yield from batch.iter_rows(named=True)


def _result(context, table: TableRef, validators, context_rows=None) -> dg.AssetCheckResult:
    base = ValidationContext(base_rows=context_rows or {})
    rows = 0
    problems = []
    for row in _rows(table):
        rows += 1
        problems.extend(validate_rows([row], validators, base))
    return check_result(problems, severity=severity_of(validators[0].severity), rows=rows)


def build_check(
    asset: dg.AssetKey | str,
    partitions_def: dg.PartitionsDefinition,
    validators: Sequence[Validator],
) -> dg.AssetChecksDefinition:
    """The asset check for one check name, from the validators that emit it (the stored
    table is re-read and every row validated)."""
    first = validators[0]
    key = dg.AssetKey.from_coercible(asset)
    options = dict(
        asset=key,
        name=first.check,
        partitions_def=partitions_def,
        blocking=first.severity == ERROR,
        description=first.description,
    )
    if any(v.needs_base for v in validators):

        @dg.asset_check(
            **options,
            additional_ins={
                "basic_instructions": dg.AssetIn(partition_mapping=dg.IdentityPartitionMapping())
            },
        )
        def _with_base(
            context: dg.AssetCheckExecutionContext, table: TableRef, basic_instructions: Table
        ) -> dg.AssetCheckResult:
            base = {r["instruction_id"]: r for r in basic_instructions.df.iter_rows(named=True)}
            return _result(context, table, validators, base)

        return _with_base

    @dg.asset_check(**options)
    def _alone(context: dg.AssetCheckExecutionContext, table: TableRef) -> dg.AssetCheckResult:
        return _result(context, table, validators)

    return _alone


def checks_for(
    asset: dg.AssetKey | str, partitions_def: dg.PartitionsDefinition, validators: Sequence[Validator]
) -> list[dg.AssetChecksDefinition]:
    """One check per check name among ``validators`` (in their order)."""
    by_name: dict[str, list[Validator]] = {}
    for validator in validators:
        by_name.setdefault(validator.check, []).append(validator)
    return [build_check(asset, partitions_def, group) for group in by_name.values()]


basic_checks = checks_for("basic_instructions", source_partitions, BASIC_VALIDATORS)
compound_checks = [
    check
    for name, spec in STRATEGIES.items()
    for check in checks_for(compound_key(name), compound_partitions[name], spec.validators)
]
# the LLM step of each strategy that asks the LLM (preference rules): requests answered,
# values accepted by the gates
llm_checks = [
    check
    for name, spec in STRATEGIES.items()
    if spec.uses_llm
    for check in llm_asset_checks(compound_key(name), compound_partitions[name], PREFERENCE_STEP)
]
