"""The evaluation assets on an ephemeral instance: lineage, Table 1, the checks, general
capability through the real lm-evaluation-harness and the real Pipes subprocess client."""

from __future__ import annotations

import json

import dagster as dg
import polars as pl
import pytest

from hum_dagster.definitions import defs
from hum_dagster.defs.evaluation.assets import (
    BELOW_BASE_CHECK,
    GENERAL_BELOW_BASE_CHECK,
    REPORT_FRAME_SCHEMA,
    EvalSettings,
    base_of,
    eval_report,
    eval_scores,
    finetuned_eval_scores,
    finetuned_general_scores,
    finetuned_not_below_base,
    general_not_below_base,
    general_report,
    general_scores,
)
from hum_dagster.defs.resources.io_manager import TableIOManager
from hum_dagster.defs.resources.llm import LLMResource
from hum_dagster.defs.resources.settings import HumSettings, base_model_specs
from hum_dagster.defs.training.partitions import BASE_MODELS
from hum_dagster.evaluation.report import parse_markdown_table
from hum_dagster.store.layout import checkpoint_dir
from hum_dagster.store.tables import Table, read_table, write_table

REPORT_ASSETS = [eval_scores, finetuned_eval_scores, eval_report, finetuned_not_below_base]
GENERAL_ASSETS = [general_scores, finetuned_general_scores, general_report, general_not_below_base]


def resources(root: str, **settings) -> dict:
    return {
        "io_manager": TableIOManager(root=root),
        "settings": HumSettings(storage_root=root),
        "llm": LLMResource(mode="offline"),
        "eval_settings": EvalSettings(**settings),
    }


def _pair() -> tuple[str, str]:
    """A fine-tuned model and its base model (from the shipped lists)."""
    tuned, base = sorted(base_of().items())[0]
    return tuned, base


def test_base_scores_wait_for_no_checkpoint_and_checkpoints_for_their_own():
    graph = defs().resolve_asset_graph()
    scores = graph.get(dg.AssetKey("eval_scores"))
    assert scores.parent_keys == set()  # base-model scores never wait for training
    tuned = graph.get(dg.AssetKey("finetuned_eval_scores"))
    assert tuned.parent_keys == {dg.AssetKey("finetuned_checkpoint")}
    assert tuned.partitions_def == graph.get(dg.AssetKey("finetuned_checkpoint")).partitions_def
    key = dg.MultiPartitionKey({"base_model": sorted(base_model_specs())[0], "corpus_variant": "full"})
    upstream = graph.get_parent_partition_keys_for_child(
        key, dg.AssetKey("finetuned_checkpoint"), dg.AssetKey("finetuned_eval_scores"),
    ).partitions_subset.get_partition_keys()
    assert list(upstream) == [key]  # exactly its own checkpoint
    assert graph.get(dg.AssetKey("eval_report")).parent_keys == {
        dg.AssetKey("eval_scores"), dg.AssetKey("finetuned_eval_scores")}
    checks = {k.name for k in graph.asset_check_keys}
    assert {BELOW_BASE_CHECK, GENERAL_BELOW_BASE_CHECK} <= checks


def _report_rows(tuned, base, tuned_value, base_value, tuned_rate=0.1, base_rate=0.1):
    rows = []
    for model, value, rate in ((tuned, tuned_value, tuned_rate), (base, base_value, base_rate)):
        for mode in ("iepile", "strict", "lenient"):
            rows.append({"model": model, "benchmark": "fewrel", "family": "FewRel", "style": "B",
                         "metric": "re_f1", "mode": mode, "value": value,
                         "parse_failure_rate": rate, "records": 300})
    return pl.DataFrame(rows, schema=REPORT_FRAME_SCHEMA)


def run_report_check(root: str, frame: pl.DataFrame, **settings) -> dg.AssetCheckEvaluation:
    write_table(f"{root}/eval_report/data.parquet", Table(frame, {}))
    result = dg.materialize(REPORT_ASSETS, selection=dg.AssetSelection.checks(finetuned_not_below_base),
                            resources=resources(root, **settings))
    (evaluation,) = result.get_asset_check_evaluations()
    assert evaluation.check_name == BELOW_BASE_CHECK
    return evaluation


@pytest.mark.parametrize("tuned_value, base_value, tuned_rate, passed, reason", [
    (30.0, 20.0, 0.1, True, None),
    (10.0, 20.0, 0.1, False, "below base"),
    (0.0, 0.0, 0.1, False, "no signal: both score 0"),
    (30.0, 20.0, 0.9, False, "no signal: 90% of generations unparsable"),
])
def test_finetuned_not_below_base_warns(tmp_path, tuned_value, base_value, tuned_rate, passed, reason):
    tuned, base = _pair()
    evaluation = run_report_check(str(tmp_path), _report_rows(tuned, base, tuned_value, base_value, tuned_rate))
    assert evaluation.passed is passed
    assert evaluation.severity == dg.AssetCheckSeverity.WARN
    if reason:
        assert reason in evaluation.metadata["findings"].value


def test_no_signal_threshold_is_a_setting(tmp_path):
    tuned, base = _pair()
    frame = _report_rows(tuned, base, 30.0, 20.0, tuned_rate=0.9)
    assert run_report_check(str(tmp_path), frame, no_signal_failure_rate=0.95).passed


def test_general_not_below_base_warns(tmp_path):
    tuned, base = _pair()
    root = str(tmp_path)

    def run(delta: float, **settings):
        rows = [{"model": m, "task": "boolq", "dimension": "Knowledge", "metric": "acc,none",
                 "value": v, "samples": 10} for m, v in ((base, 60.0), (tuned, 60.0 + delta))]
        write_table(f"{root}/general_report/data.parquet", Table(pl.DataFrame(rows), {}))
        result = dg.materialize(GENERAL_ASSETS, selection=dg.AssetSelection.checks(general_not_below_base),
                                resources=resources(root, **settings))
        (evaluation,) = result.get_asset_check_evaluations()
        return evaluation

    assert run(-0.5).passed  # within the tolerance (1 point)
    worse = run(-3.0)
    assert not worse.passed and "below base by 3.00 points" in worse.metadata["findings"].value
    assert run(-3.0, general_tolerance=5.0).passed


# --------------------------------------------------------------------------- with SmolLM2


def _smollm2():
    pytest.importorskip("transformers")
    from hum_dagster.evaluation.models import ModelNotFoundError, smollm2_gguf

    try:
        smollm2_gguf()
    except ModelNotFoundError as exc:
        pytest.skip(str(exc))


@pytest.mark.slow
def test_eval_scores_and_report_with_the_small_local_model(tmp_path, shared_data):
    """SmolLM2-135M-Instruct scores a real benchmark sample in both styles; the report
    lays the scores out as Table 1, every line with the header's cell count, and the
    check says whether there is anything to compare."""
    _smollm2()
    root = str(tmp_path)
    res = resources(root, sample_size=1, max_new_tokens=8)
    instance = dg.DagsterInstance.ephemeral()
    key = dg.MultiPartitionKey({"model": "smollm2_base", "benchmark": "imdb"})
    result = dg.materialize([eval_scores], partition_key=key, resources=res, instance=instance)
    meta = result.get_asset_materialization_events()[0].materialization.metadata
    lineage = meta["lineage"].value
    assert lineage["model"] == "smollm2_base" and lineage["benchmark"] == "imdb"
    assert lineage["benchmark_files"]["texts.csv"]  # the file version the score was made on
    assert set(meta["headline"].value) == {"B", "C"}
    assert meta["record_counts"].value["imdb"]["file_records"] == 1000
    assert meta["record_counts"].value["imdb"]["records"] == 1
    stored = read_table(f"{root}/eval_scores/benchmark=imdb/model=smollm2_base.parquet").df
    assert set(stored["style"]) == {"B", "C"} and stored["generation"].null_count() == 0
    report = dg.materialize(REPORT_ASSETS, selection=[eval_report, finetuned_not_below_base],
                            resources=res, instance=instance)
    meta = report.get_asset_materialization_events()[0].materialization.metadata
    table = parse_markdown_table(meta["table_1"].value)
    assert len({len(line) for line in table}) == 1
    assert table[0] == ["model", "imdb Acc (B)", "imdb Acc (C)", "Avg B", "Avg C"]
    assert table[2] == ["records", "1", "1", "", ""] and table[3][0] == "smollm2_base"
    assert table[4][0] == "↳ parse failures" and all(c.endswith("%") for c in table[4][1:])
    assert {"table_1_iepile", "table_1_strict", "table_1_lenient"} <= set(meta)
    assert meta["chart_image"].value.startswith("![Table 1 chart](data:image/png;base64,")
    (check,) = report.get_asset_check_evaluations()
    assert not check.passed  # only a base model: nothing to compare is said, not passed
    assert "no fine-tuned model" in check.metadata["findings"].value


TINY_TASK = """task: hum_tiny_mc
dataset_path: json
dataset_kwargs:
  data_files:
    test: {data}
test_split: test
output_type: multiple_choice
doc_to_text: "Question: {{{{question}}}}\\nAnswer:"
doc_to_choice: "{{{{choices}}}}"
doc_to_target: "{{{{answer}}}}"
metric_list:
  - metric: acc
    aggregation: mean
    higher_is_better: true
metadata:
  version: 1.0
"""


@pytest.mark.slow
def test_general_capability_through_the_real_harness_and_pipes(tmp_path):
    """lm-evaluation-harness on a multiple-choice task written here over a local file,
    SmolLM2 as the base model and a freshly initialised LoRA adapter (B = 0, so the same
    weights) as its checkpoint, both launched through the real PipesSubprocessClient;
    the report has both, and the check sees no loss."""
    _smollm2()
    pytest.importorskip("lm_eval")
    from peft import LoraConfig, get_peft_model

    from hum_dagster.evaluation.models import load_model

    tasks = tmp_path / "tasks"
    tasks.mkdir()
    data = tasks / "tiny.jsonl"
    questions = [("How many days are in a week?", ["three", "seven"], 1),
                 ("What colour is snow?", ["white", "green"], 0),
                 ("Which one is a number?", ["dog", "five"], 1),
                 ("What do fish live in?", ["water", "fire"], 0)]
    data.write_text("".join(json.dumps({"question": q, "choices": c, "answer": a}) + "\n"
                            for q, c, a in questions), encoding="utf-8")
    (tasks / "hum_tiny_mc.yaml").write_text(TINY_TASK.format(data=data), encoding="utf-8")
    root = str(tmp_path / "storage")
    tuned, base = _pair()
    base_name = sorted(base_model_specs())[0]
    loaded = load_model(base_model_specs()[base_name], storage_root=root)
    adapter = checkpoint_dir(root, base_name, "full") + "/adapter"
    peft_model = get_peft_model(loaded.model, LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj"]))
    peft_model.save_pretrained(adapter)
    res = resources(root, general_tasks="hum_tiny_mc", general_include_path=str(tasks), batch_size=4)
    instance = dg.DagsterInstance.ephemeral()
    instance.add_dynamic_partitions(BASE_MODELS, [base_name])  # hum run registers them
    listed = dg.materialize(GENERAL_ASSETS, selection=[general_scores], partition_key=base,
                            resources=res, instance=instance)
    meta = listed.get_asset_materialization_events()[0].materialization.metadata
    assert meta["launcher"].value == "subprocess"
    assert json.loads(meta["tasks"].value) == ["hum_tiny_mc"]  # reported by the entry point
    stored = read_table(f"{root}/general_scores/{base}.parquet").df
    assert stored["task"].to_list() == ["hum_tiny_mc"] and stored["samples"].to_list() == [4]
    assert 0.0 <= stored["value"][0] <= 100.0
    key = dg.MultiPartitionKey({"base_model": base_name, "corpus_variant": "full"})
    dg.materialize(GENERAL_ASSETS, selection=[finetuned_general_scores], partition_key=key,
                   resources=res, instance=instance)
    tuned_value = read_table(
        f"{root}/finetuned_general_scores/base_model={base_name}/corpus_variant=full.parquet").df["value"][0]
    assert tuned_value == pytest.approx(stored["value"][0])  # B = 0: the adapter changes nothing
    report = dg.materialize(GENERAL_ASSETS, selection=[general_report, general_not_below_base],
                            resources=res, instance=instance)
    table = report.get_asset_materialization_events()[0].materialization.metadata["table_5"].value
    assert base in table and tuned in table and "Other" in table
    (check,) = report.get_asset_check_evaluations()
    assert check.passed
