"""Checks of the ``synthesis`` group: one per validator check name, beside each asset.

Basic instructions: ``outputs_parse_with_own_labels``, ``spans_occur_in_input``. Each
compound asset gets one check per check name its strategy's validators emit
(``synthesis.strategies.STRATEGIES[...].validators``): a validator added there becomes a
check here with no other change. Error-severity checks are blocking. An asset's checks run
as one step (a ``multi_asset_check``) that reads the table once.
"""

from collections.abc import Sequence

import dagster as dg

from hum_dagster.defs.checks import check_result, severity_of
from hum_dagster.defs.resources.llm import llm_asset_checks
from hum_dagster.defs.sources.partitions import source_partitions
from hum_dagster.defs.synthesis.compound import BASIC_KEY, compound_key
from hum_dagster.defs.synthesis.partitions import compound_partitions
from hum_dagster.store.tables import Table, TableRef
from hum_dagster.synthesis.preferences_llm import PREFERENCE_STEP
from hum_dagster.synthesis.strategies import (
    BASIC_VALIDATORS,
    ERROR,
    STRATEGIES,
    ValidationContext,
    Validator,
    check_rows,
)

BATCH_ROWS = 20_000


def _rows(table: TableRef):
    """A stored table's rows as dicts, a slice at a time."""
    for batch in table.scan().collect_batches(chunk_size=BATCH_ROWS):
        yield from batch.iter_rows(named=True)


def _groups(validators: Sequence[Validator]) -> dict[str, list[Validator]]:
    """Check name -> its validators, in their order."""
    by_name: dict[str, list[Validator]] = {}
    for validator in validators:
        by_name.setdefault(validator.check, []).append(validator)
    return by_name


def checks_for(
    asset: dg.AssetKey | str,
    partitions_def: dg.PartitionsDefinition,
    validators: Sequence[Validator],
) -> dg.AssetChecksDefinition:
    """The asset checks of one asset, one per check name among ``validators``, run as one
    step: the stored table is read once and each row goes through every selected
    validator (the label and own-input checks share one parse of it, see
    ``synthesis.strategies.check_rows``). Each check is still its own check in the UI,
    with its own severity and result, and can be executed alone (the step then runs only
    the selected checks' validators)."""
    key = dg.AssetKey.from_coercible(asset)
    groups = _groups(validators)
    needs_base = any(v.needs_base for v in validators)
    specs = [
        dg.AssetCheckSpec(
            name,
            asset=key,
            description=group[0].description,
            blocking=group[0].severity == ERROR,
            partitions_def=partitions_def,
            # the basic rows of the same source (an input of the step, below)
            additional_deps=[dg.AssetDep(BASIC_KEY, partition_mapping=dg.IdentityPartitionMapping())]
            if any(v.needs_base for v in group) else None,
        )
        for name, group in groups.items()
    ]
    ins = {"table": dg.AssetIn(key=key)}
    if needs_base:
        ins["basic_instructions"] = dg.AssetIn(key=BASIC_KEY)

    def evaluate(context, table: TableRef, basic: Table | None):
        selected = {k.name for k in context.selected_asset_check_keys if k.asset_key == key}
        chosen = [v for name, group in groups.items() if name in selected for v in group]
        base = {}
        if basic is not None and any(v.needs_base for v in chosen):
            base = {r["instruction_id"]: r for r in basic.df.iter_rows(named=True)}
        rows = 0

        def counted():
            nonlocal rows
            for row in _rows(table):
                rows += 1
                yield row

        found = check_rows(counted(), chosen, ValidationContext(base_rows=base))
        for name, group in groups.items():
            if name in selected:
                yield check_result(found[name], severity=severity_of(group[0].severity), rows=rows,
                                   asset_key=key, check_name=name)

    name = f"{'__'.join(key.path)}_checks"
    if needs_base:

        @dg.multi_asset_check(specs=specs, ins=ins, can_subset=True, name=name)
        def _with_base(context: dg.AssetCheckExecutionContext, table: TableRef,
                       basic_instructions: Table):
            yield from evaluate(context, table, basic_instructions)

        return _with_base

    @dg.multi_asset_check(specs=specs, ins=ins, can_subset=True, name=name)
    def _alone(context: dg.AssetCheckExecutionContext, table: TableRef):
        yield from evaluate(context, table, None)

    return _alone


basic_checks = [checks_for(BASIC_KEY, source_partitions, BASIC_VALIDATORS)]
compound_checks = [
    checks_for(compound_key(name), compound_partitions[name], spec.validators)
    for name, spec in STRATEGIES.items()
]
# the LLM step of each strategy that asks the LLM (preference rules): requests answered,
# values accepted by the gates
llm_checks = [
    check
    for name, spec in STRATEGIES.items()
    if spec.uses_llm
    for check in llm_asset_checks(compound_key(name), compound_partitions[name], PREFERENCE_STEP)
]
