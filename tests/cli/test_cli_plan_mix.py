"""`hum run`'s plan re-mixes a corpus made under other mix settings, and only then."""

from __future__ import annotations

import dagster as dg

from hum_dagster.cli.run import mix_settings, plan


def test_a_corpus_mixed_under_other_settings_is_planned_again():
    made_with = {"mix_mode": "fill", "mix_total": 0, "mix_compound": "all"}

    @dg.asset(name="hum_corpus")
    def corpus() -> dg.MaterializeResult:
        return dg.MaterializeResult(metadata={"mix_settings": dg.MetadataValue.json(made_with)})

    defs = dg.Definitions(assets=[corpus])
    instance = dg.DagsterInstance.ephemeral()
    assert dg.materialize([corpus], instance=instance).success
    graph = defs.resolve_asset_graph()
    key = dg.AssetKey("hum_corpus")
    wanted = {key: [None]}
    assert plan(graph, instance, wanted, mix_settings({"HUM_MIX_MODE": "fill"})) == ({}, {})
    todo, reasons = plan(graph, instance, wanted, mix_settings({"HUM_MIX_TOTAL": "3000"}))
    assert todo == {key: [None]} and reasons == {"mix settings changed": 1}
    todo, reasons = plan(graph, instance, wanted, mix_settings({"HUM_MIX_MODE": "strict"}))
    assert reasons == {"mix settings changed": 1}
    todo, reasons = plan(graph, instance, wanted, mix_settings({"HUM_MIX_COMPOUND": "combined"}))
    assert reasons == {"mix settings changed": 1}
