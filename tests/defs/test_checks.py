"""Every asset check fails on bad data: a bad source materialized, or the check executed
alone against a stored table made bad on purpose. Error checks block what reads the
partition, in the same run and in later ones; the corpus refuses unusable inputs."""

from __future__ import annotations

import json
import os
import shutil
import time

import dagster as dg
import polars as pl
import pytest
import yaml
from conftest import SOURCE_KEYS, register, run, run_check

from hum_dagster.defs.synthesis.compound import compound_key
from hum_dagster.paths import DEFAULT_CATALOG
from hum_dagster.store import layout
from hum_dagster.store.tables import Table, read_table, write_table
from hum_dagster.synthesis.strategies import applicable

SHIPPED = {s["name"]: s for s in yaml.safe_load(DEFAULT_CATALOG.read_text())["sources"]}


def write_catalog(tmp_path, entries: list[dict]) -> str:
    path = tmp_path / "catalog.yaml"
    path.write_text(yaml.safe_dump({"sources": entries}), encoding="utf-8")
    return str(path)


def shipped(tmp_path, name: str, copy: bool = False) -> dict:
    """A shipped catalog entry with absolute paths (its data file copied when ``copy``)."""
    entry = json.loads(json.dumps(SHIPPED[name]))
    location = (DEFAULT_CATALOG.parent / entry["location"]).resolve()
    if copy:
        target = tmp_path / location.name
        shutil.copyfile(location, target)
        location = target
    entry["location"] = str(location)
    for key in ("schema", "pid2name"):
        if key in entry.get("options", {}):
            entry["options"][key] = str((DEFAULT_CATALOG.parent / entry["options"][key]).resolve())
    return entry


@pytest.fixture
def graph(tmp_path, hum_env, project_defs, monkeypatch):
    """(definitions, instance, storage root, set_catalog(entries) -> registered entries)."""
    instance = dg.DagsterInstance.ephemeral()

    def set_catalog(entries: list[dict]) -> dict:
        path = write_catalog(tmp_path, entries)
        monkeypatch.setenv("HUM_CATALOG", path)
        return register(instance, path)

    return project_defs, instance, hum_env, set_catalog


def rewrite(path: str, change) -> None:
    """Apply ``change(rows) -> rows`` to a stored table, keeping its footer."""
    table = read_table(path)
    rows = change(table.df.to_dicts())
    write_table(path, Table(pl.DataFrame(rows, schema=table.df.schema), table.meta))


def test_quarantine_rate_fails_and_blocks_the_source_downstream(tmp_path, graph):
    defs, instance, root, set_catalog = graph
    bad = tmp_path / "reviews.csv"
    bad.write_text("label,text\npositive,fine film\nneutral,meh\nnegative,awful\n", encoding="utf-8")
    set_catalog([{"name": "reviews", "task": "TC", "language": "en", "format": "csv",
                  "location": str(bad), "options": {"text_column": "text", "label_column": "label",
                                                    "labels": ["negative", "positive"]}}])
    result = run(defs, instance, SOURCE_KEYS, "reviews")
    check = {c.check_name: c for c in result.get_asset_check_evaluations()}
    assert not check["quarantine_rate_below_threshold"].passed
    assert check["quarantine_rate_below_threshold"].severity == dg.AssetCheckSeverity.ERROR
    assert check["quarantine_rate_below_threshold"].metadata["quarantined"].value == 1
    assert not result.success
    # blocking: the basic instructions of this source were not built in that run ...
    assert not (root / "basic_instructions" / "reviews.parquet").exists()
    # ... nor in a later run that asks for them alone
    later = run(defs, instance, ["basic_instructions"], "reviews")
    assert not later.success
    failure = later.get_step_failure_events()[0].step_failure_data.user_failure_data.description
    assert "raw_sources[reviews] failed its check quarantine_rate_below_threshold" in failure


@pytest.fixture
def ner(graph, tmp_path):
    defs, instance, root, set_catalog = graph
    set_catalog([shipped(tmp_path, "ner_en_conll")])
    assert run(defs, instance, SOURCE_KEYS, "ner_en_conll").success
    return defs, instance, root


def _bad_span(rows):
    out = json.loads(rows[0]["output"])
    label = next(iter(out))
    out[label] = [*out[label], "a span that is nowhere in the text"]
    rows[0]["output"] = json.dumps(out)
    return rows


def test_basic_checks_fail_on_a_stored_bad_table_and_block_compound(ner):
    defs, instance, root = ner
    path = layout.table_path(str(root), "basic_instructions", "ner_en_conll")
    for check in ("spans_occur_in_input", "outputs_parse_with_own_labels"):
        assert run_check(defs, instance, "basic_instructions", check, "ner_en_conll").passed
    rewrite(path, _bad_span)
    spans = run_check(defs, instance, "basic_instructions", "spans_occur_in_input", "ner_en_conll")
    assert not spans.passed and spans.metadata["failures"].value == 1
    assert "nowhere in the text" in spans.metadata["examples"].value
    # a span problem is not a parse problem: the checks are told apart by check name
    assert run_check(defs, instance, "basic_instructions", "outputs_parse_with_own_labels",
                     "ner_en_conll").passed

    def extra_key(rows):
        out = json.loads(rows[1]["output"])
        out["not a label of this chunk"] = []
        rows[1]["output"] = json.dumps(out)
        return rows

    rewrite(path, extra_key)
    parse = run_check(defs, instance, "basic_instructions", "outputs_parse_with_own_labels", "ner_en_conll")
    assert not parse.passed and "not a schema label" in parse.metadata["examples"].value
    # a compound asset in a later run refuses the partition whose error check failed
    compound = run(defs, instance, [compound_key("description")], "ner_en_conll")
    assert not compound.success
    failure = compound.get_step_failure_events()[0].step_failure_data.user_failure_data.description
    assert "basic_instructions[ner_en_conll] failed its check" in failure


def test_compound_checks_fail_on_stored_bad_tables(ner):
    defs, instance, root = ner
    source = "ner_en_conll"
    for strategy in ("description", "examples", "format_variants"):
        assert run(defs, instance, [compound_key(strategy)], source).success

    def compound_path(strategy):
        return layout.table_path(str(root), ["compound_instructions", strategy], source)

    # outputs_match_own_labels: an output key the instruction never asked for
    def wrong_label(rows):
        out = json.loads(rows[0]["output"])
        out["invented label"] = []
        rows[0]["output"] = json.dumps(out)
        return rows

    rewrite(compound_path("description"), wrong_label)
    labels = run_check(defs, instance, compound_key("description"), "outputs_match_own_labels", source)
    assert not labels.passed and labels.metadata["failures"].value == 1

    # no_example_is_own_input: an example shown is the instruction's own input
    def own_input(rows):
        for row in rows:
            inst = json.loads(row["instruction"])
            for item in inst["schema"]:
                if isinstance(item, dict) and item.get("positive examples"):
                    item["positive examples"][0]["text"] = inst["input"]
                    row["instruction"] = json.dumps(inst, ensure_ascii=False)
                    row["schema"] = json.dumps(inst["schema"], ensure_ascii=False)
                    return rows
        raise AssertionError("no row with examples")

    assert run_check(defs, instance, compound_key("examples"), "no_example_is_own_input", source).passed
    rewrite(compound_path("examples"), own_input)
    own = run_check(defs, instance, compound_key("examples"), "no_example_is_own_input", source)
    assert not own.passed and "own input" in own.metadata["examples"].value
    assert run_check(defs, instance, compound_key("examples"), "outputs_match_own_labels", source).passed

    # outputs_follow_stated_format: the instruction states another layout than its output's
    fmt = compound_path("format_variants")
    check = "outputs_follow_stated_format"
    assert run_check(defs, instance, compound_key("format_variants"), check, source).passed
    original = read_table(fmt)

    def other_format(rows):
        inst = json.loads(rows[0]["instruction"])
        inst["format"] = "yaml" if inst["format"] != "yaml" else "json"
        rows[0]["instruction"] = json.dumps(inst, ensure_ascii=False)
        return rows

    rewrite(fmt, other_format)
    stated = run_check(defs, instance, compound_key("format_variants"), check, source)
    assert not stated.passed and stated.metadata["failures"].value == 1
    write_table(fmt, original)

    # ... and the output must read back into its base answer as stored in
    # basic_instructions now (what the synthesis-time filter cannot see)
    basic = layout.table_path(str(root), "basic_instructions", source)
    base_ids = set(original.df["base_instruction_id"])

    def changed_answer(rows):
        for row in rows:
            if row["instruction_id"] in base_ids and row["output"] not in ('{}', ""):
                out = json.loads(row["output"])
                label = next(iter(out))
                out[label] = ["EU"] if out[label] != ["EU"] else []
                row["output"] = json.dumps(out)
                return rows
        raise AssertionError("no base row")

    basic_table = read_table(basic)
    rewrite(basic, changed_answer)
    read_back = run_check(defs, instance, compound_key("format_variants"), check, source)
    assert not read_back.passed
    rewrite(basic, lambda rows: [r for r in rows if r["instruction_id"] not in base_ids])
    gone = run_check(defs, instance, compound_key("format_variants"), check, source)
    assert not gone.passed and "is not in the stored basic_instructions" in gone.metadata["examples"].value
    write_table(basic, basic_table)

    # no_own_answer_in_guidelines: a description that quotes the record's own answer
    leak = "no_own_answer_in_guidelines"
    assert run_check(defs, instance, compound_key("description"), leak, source).passed
    spans = {
        r["instruction_id"]: r for r in basic_table.df.iter_rows(named=True)
        if r["output"] not in ("{}", "")
    }

    def quote_answer(rows):
        for row in rows:
            base = spans.get(row["base_instruction_id"])
            values = [v for vs in json.loads(base["output"]).values() for v in vs] if base else []
            if not values:
                continue
            inst = json.loads(row["instruction"])
            for item in inst["schema"]:
                if isinstance(item, dict) and item.get("description"):
                    item["description"] += f' For example "{values[0]}".'
                    row["instruction"] = json.dumps(inst, ensure_ascii=False)
                    return rows
        raise AssertionError("no row to leak into")

    rewrite(compound_path("description"), quote_answer)
    leaked = run_check(defs, instance, compound_key("description"), leak, source)
    assert not leaked.passed and leaked.metadata["failures"].value == 1


def test_dictionary_coverage_warns_on_an_undescribed_label(ner):
    defs, instance, root = ner
    path = layout.table_path(str(root), "schema_dictionary", "ner_en_conll")
    assert run_check(defs, instance, "schema_dictionary", "labels_have_descriptions", "ner_en_conll").passed

    def undescribed(rows):
        top = next(r for r in rows if not r["parent"])
        top["descriptions"] = "[]"
        return rows

    rewrite(path, undescribed)
    result = run_check(defs, instance, "schema_dictionary", "labels_have_descriptions", "ner_en_conll")
    assert not result.passed and result.severity == dg.AssetCheckSeverity.WARN


def test_no_overlap_fails_when_a_contaminated_row_is_in_the_stored_corpus(graph, shared_data):
    from hum_dagster.corpus.decontam import benchmark_texts

    defs, instance, root, _ = graph
    bench, _, text = next(t for t in benchmark_texts() if len(t[2].split()) > 30)
    path = layout.table_path(str(root), "hum_corpus", "full")

    def corpus(inputs):
        rows = [{"instruction_id": f"i{n}", "instruction": json.dumps(
            {"instruction": "Classify the review.", "schema": ["positive"], "input": t})}
            for n, t in enumerate(inputs)]
        write_table(path, Table(pl.DataFrame(rows)))

    corpus(["A sentence of our own that no benchmark holds, about nothing in particular."])
    assert run_check(defs, instance, "hum_corpus", "no_overlap_with_evaluation_sets", "full").passed
    corpus(["A clean one.", text])
    result = run_check(defs, instance, "hum_corpus", "no_overlap_with_evaluation_sets", "full")
    assert not result.passed and result.severity == dg.AssetCheckSeverity.ERROR
    assert result.metadata["failures"].value == 1 and bench in result.metadata["examples"].value


def test_split_check_fails_when_a_text_is_in_both_splits(graph):
    defs, instance, root, _ = graph
    path = layout.table_path(str(root), "hum_corpus", "full")

    def corpus(splits):
        rows = [{"instruction_id": f"i{n}", "text_id": text, "record_id": f"r{n}", "split": split}
                for n, (text, split) in enumerate(splits)]
        write_table(path, Table(pl.DataFrame(rows)))

    corpus([("t1", "train"), ("t1", "train"), ("t2", "validation")])
    assert run_check(defs, instance, "hum_corpus", "no_text_in_both_splits", "full").passed
    corpus([("t1", "train"), ("t1", "validation"), ("t2", "validation")])
    result = run_check(defs, instance, "hum_corpus", "no_text_in_both_splits", "full")
    assert not result.passed and result.metadata["failures"].value == 1


def _build_source(defs, instance, entry, name):
    assert run(defs, instance, SOURCE_KEYS, name).success
    for strategy in applicable(entry["task"]):
        assert run(defs, instance, [compound_key(strategy)], name).success


def test_corpus_refuses_failed_and_outdated_sources(tmp_path, graph):
    defs, instance, root, set_catalog = graph
    entries = [shipped(tmp_path, "tc_en_csv", copy=True), shipped(tmp_path, "mrc_en_squad")]
    set_catalog(entries)
    for entry in entries:
        _build_source(defs, instance, entry, entry["name"])
    assert run(defs, instance, ["hum_corpus"], "full").success

    # a source file changed after its materialization: the corpus says so and is not built
    data = entries[0]["location"]
    later = time.time() + 5
    os.utime(data, (later, later))
    result = run(defs, instance, ["hum_corpus"], "full")
    assert not result.success
    message = result.get_step_failure_events()[0].step_failure_data.user_failure_data.description
    assert "raw_sources[tc_en_csv]" in message and "older than its source file" in message

    # the source now fails to read: its stored rows are out of date, and named
    with open(data, "wb") as handle:
        handle.write(b"label,text\n\xff\xfe not utf-8\n")
    assert not run(defs, instance, SOURCE_KEYS, "tc_en_csv").success
    result = run(defs, instance, ["hum_corpus"], "full")
    message = result.get_step_failure_events()[0].step_failure_data.user_failure_data.description
    assert "raw_sources[tc_en_csv] failed in run" in message and "out of date" in message
    assert "mrc_en_squad" not in message  # the good source is not blamed


def test_corpus_of_an_empty_catalog_says_so(graph):
    defs, instance, _, set_catalog = graph
    set_catalog([])
    result = run(defs, instance, ["hum_corpus"], "full")
    message = result.get_step_failure_events()[0].step_failure_data.user_failure_data.description
    assert "no source partitions are registered" in message


def test_the_run_summary_counts_a_failed_error_check_as_a_failure_and_a_warning_as_one(
    tmp_path, graph
):
    from hum_dagster.cli import summary

    defs, instance, root, set_catalog = graph
    bad = tmp_path / "reviews.csv"
    bad.write_text("label,text\npositive,fine film\nneutral,meh\nnegative,awful\n", encoding="utf-8")
    set_catalog([{"name": "reviews", "task": "TC", "language": "en", "format": "csv",
                  "location": str(bad), "options": {"text_column": "text", "label_column": "label",
                                                    "labels": ["negative", "positive"]}},
                 shipped(tmp_path, "ner_en_conll")])
    run(defs, instance, SOURCE_KEYS, "reviews")
    assert run(defs, instance, SOURCE_KEYS, "ner_en_conll").success
    path = layout.table_path(str(root), "schema_dictionary", "ner_en_conll")
    rewrite(path, lambda rows: [dict(r, descriptions="[]") for r in rows])
    run_check(defs, instance, "schema_dictionary", "labels_have_descriptions", "ner_en_conll")
    graph_ = defs.resolve_asset_graph()
    wanted = {dg.AssetKey(k): ["reviews", "ner_en_conll"] for k in ("raw_sources", "schema_dictionary")}
    errors, warnings = summary.check_results(instance, graph_, wanted)
    assert [(f.asset, f.partition) for f in errors] == [("raw_sources", "reviews")]
    assert "check quarantine_rate_below_threshold failed (1 problems; e.g. reviews: 1 of 3" in errors[0].line
    assert len(warnings) == 1 and "schema_dictionary[ner_en_conll]: check labels_have_descriptions" in warnings[0]
    report = summary.collect(instance, graph_, wanted, None, tmp_path / "log.txt")
    status = {row["source"]: row["status"] for row in report.sources}
    assert status == {"reviews": "FAILED", "ner_en_conll": "ok"}
    env = {"HUM_STORAGE_ROOT": str(root), "DAGSTER_HOME": str(tmp_path)}
    assert summary.show(report, env, tmp_path, 1.0, None) == 1  # the exit code


def test_one_check_step_reports_each_check_of_the_asset_on_its_own(ner):
    """All checks of an asset selected together (as a materialization run has them): one
    step evaluates every check, and a bad row fails the check it breaks, not the others."""
    defs, instance, root = ner
    path = layout.table_path(str(root), "basic_instructions", "ner_en_conll")
    rewrite(path, _bad_span)
    key = dg.AssetKey("basic_instructions")
    job = dg.define_asset_job("basic_checks", selection=dg.AssetSelection.checks_for_assets(key),
                              partitions_def=defs.resolve_asset_graph().get(key).partitions_def)
    merged = dg.Definitions.merge(defs, dg.Definitions(jobs=[job]))
    result = merged.resolve_job_def("basic_checks").execute_in_process(
        tags={"dagster/partition": "ner_en_conll"}, instance=instance, raise_on_error=False,
    )
    steps = {e.step_key for e in result.all_events if e.is_step_start}
    assert steps == {"basic_instructions_checks"}
    checks = {c.check_name: c for c in result.get_asset_check_evaluations()}
    assert set(checks) == {"outputs_parse_with_own_labels", "spans_occur_in_input"}
    assert not checks["spans_occur_in_input"].passed
    assert checks["spans_occur_in_input"].metadata["failures"].value == 1
    assert checks["outputs_parse_with_own_labels"].passed
    assert checks["spans_occur_in_input"].metadata["rows_checked"].value == \
        checks["outputs_parse_with_own_labels"].metadata["rows_checked"].value > 0
