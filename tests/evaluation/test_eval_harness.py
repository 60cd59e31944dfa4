"""The general-capability harness wrapper: task sets, figures, local task files, imports."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from hum_dagster.evaluation.harness import (
    GENERAL_TASK_DIR,
    SAMPLE_TASK,
    TABLE5,
    local_task_configs,
    primary_figure,
    resolve_tasks,
    summarise,
)


def test_task_sets():
    assert resolve_tasks("sample") == ([SAMPLE_TASK], {SAMPLE_TASK: "Sample"})
    tasks, dims = resolve_tasks("table5")
    assert set(dims.values()) == set(TABLE5) and "mmlu" in tasks and dims["gsm8k"] == "Reasoning"
    assert resolve_tasks("boolq, my_task") == (["boolq", "my_task"], {"boolq": "Knowledge", "my_task": "Other"})
    with pytest.raises(ValueError, match="no general"):
        resolve_tasks(" , ")


def test_table5_tasks_exist_in_the_installed_harness():
    pytest.importorskip("lm_eval")
    from lm_eval.tasks import TaskManager

    known = set(TaskManager().all_tasks)
    missing = [t for tasks in TABLE5.values() for t in tasks if t not in known]
    assert missing == []


def test_primary_figure_and_summary():
    assert primary_figure({"acc,none": 0.5, "acc_norm,none": 0.7}) == ("acc,none", 50.0)
    assert primary_figure({"exact_match,strict-match": 0.25}) == ("exact_match,strict-match", 25.0)
    assert primary_figure({"acc,none": float("nan")}) is None
    results = {"results": {"boolq": {"acc,none": 0.6}, "piqa": {"acc,none": 0.7},
                           "hellaswag": {"acc_norm,none": 0.3}},
               "n-samples": {"boolq": {"effective": 10, "original": 10}}}
    summary = summarise(results, {"boolq": "Knowledge", "piqa": "Reasoning",
                                  "hellaswag": "Reasoning", "gsm8k": "Reasoning"})
    assert summary["primary"]["boolq"] == {"metric": "acc,none", "value": 60.0,
                                           "dimension": "Knowledge", "samples": 10}
    assert summary["dimensions"] == {"Knowledge": 60.0, "Reasoning": pytest.approx(50.0)}
    assert summary["missing_tasks"] == ["gsm8k"]


def test_local_task_files_resolve_their_data_next_to_them(tmp_path):
    (tmp_path / "data.jsonl").write_text('{"q": 1}\n')
    (tmp_path / "t.yaml").write_text("task: t\ndataset_path: json\n"
                                     "dataset_kwargs:\n  data_files:\n    test: data.jsonl\n")
    (tmp_path / "tagged.yaml").write_text("task: x\nprocess_docs: !function utils.p\n")
    configs = local_task_configs([tmp_path])
    assert configs["t"]["dataset_kwargs"]["data_files"]["test"] == str(tmp_path / "data.jsonl")
    assert "x" not in configs  # YAML with lm-eval tags is left to lm-eval's own loader
    shipped = local_task_configs([GENERAL_TASK_DIR])[SAMPLE_TASK]
    path = shipped["dataset_kwargs"]["data_files"]["test"]
    with open(path, encoding="utf-8") as handle:
        rows = [json.loads(line) for line in handle]
    assert len(rows) == 24 and all(0 <= r["answer"] < len(r["choices"]) for r in rows)


def test_harness_entry_imports_no_dagster_and_fails_in_one_line():
    code = ("import sys, hum_dagster.evaluation.harness_entry; "
            "print([m for m in sys.modules if m == 'dagster' or m.startswith('dagster.')])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
    from hum_dagster.evaluation.harness_entry import settings_from

    with pytest.raises(ValueError, match=r"missing harness settings: \['tasks', 'output'\]"):
        settings_from({"model": "m"})
    with pytest.raises(ValueError, match="unknown harness settings"):
        settings_from({"model": "m", "tasks": "sample", "output": "o", "gpu": 1})
