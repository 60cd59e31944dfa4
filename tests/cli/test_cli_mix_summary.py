"""What `hum run` says about the corpus mix: per task available / wanted / used and what
limited it, ablation replacements, and one-line errors for bad mix settings."""

from __future__ import annotations

import polars as pl
import pytest
from test_cli_run import _env, hum

from hum_dagster.cli.summary import corpus_mix_lines
from hum_dagster.corpus.mix import MixConfig, mix
from hum_dagster.paths import DEFAULT_CATALOG


def _pool() -> pl.DataFrame:
    rows = []
    for task, n in (("NER", 300), ("KGE", 3)):
        for i in range(n):
            rows.append({"instruction_id": f"{task}-{i}", "task": task, "source": "s",
                         "strategy": "basic" if i % 2 else "description"})
    return pl.DataFrame(rows)


def test_the_full_corpus_lines_say_per_task_what_limited_it():
    result = mix(_pool(), MixConfig(total=100))
    meta = {"mix_by_task": result.report["per_task"], "mix_mode": "fill",
            "mix_target_total": 100, "instructions": result.rows.height,
            "variant_replacements": {"name": "full", "removed": 0}}
    lines = corpus_mix_lines(meta)
    assert lines[0] == "  mix fill, total 100 (per task: rows available, wanted at the target share, used):"
    header = lines[1].split()
    assert header[:6] == ["task", "target", "available", "wanted", "used", "achieved"]
    by_task = {line.split()[0]: line for line in lines[2:]}
    assert by_task["KGE"].split()[2:5] == ["3", "12", "3"] and "all available" in by_task["KGE"]
    assert by_task["NER"].split()[2:5] == ["300", "23", "97"]
    assert by_task["NER"].endswith("capped by the task's share of the total")
    assert by_task["EE"].endswith("no rows")
    meta["mix_settings"] = {"mix_mode": "fill", "mix_total": 100, "mix_compound": "combined"}
    assert corpus_mix_lines(meta)[0].startswith(
        "  mix fill, total 100, compound rows from the combined strategy only (per task")


def test_what_bounds_a_strict_total_is_printed_under_the_table():
    result = mix(_pool(), MixConfig(mode="strict"))
    meta = {"mix_by_task": result.report["per_task"], "mix_mode": "strict",
            "mix_target_total": result.report["target_total"],
            "limited_by": result.report["limited"] + result.report["notes"]}
    lines = corpus_mix_lines(meta)
    assert lines[-1].startswith("    total limited by basic KGE: 1 available")
    assert not any("no supply" in line for line in lines)
    ner = next(line for line in lines if line.split()[0] == "NER")
    assert ner.endswith("capped to keep the exact proportions (the total is set by basic KGE)")


def test_an_ablation_line_says_how_its_rows_were_replaced_and_how_much_smaller_it_is():
    meta = {"instructions": 150, "variant_replacements": {
        "name": "no_guidelines", "removed": 120, "replaced_by_base": 60,
        "replaced_by_same_task": 5, "replaced_by_kept_strategy": 5, "not_replaced": 50,
        "scaled_to": 0.75, "rows_in_full": 200}}
    (line,) = corpus_mix_lines(meta)
    assert "of its 120 left-out compound rows 65 became basic rows" in line
    assert "5 rows of a kept strategy, 50 had no unused row" in line
    assert "every task cut to 75% of its rows in full: 150 of 200 rows" in line
    meta["variant_replacements"].update(not_replaced=0, scaled_to=1.0, replaced_by_base=110)
    (line,) = corpus_mix_lines(meta)
    assert "cut to" not in line


@pytest.mark.parametrize(
    ("args", "extra", "expected"),
    [
        ((), {"HUM_MIX_MODE": "balanced"},
         "hum run: settings: mix_mode: unknown mix mode 'balanced'; expected one of fill, strict"),
        (("--mix-total", "-5"), {}, "hum run: settings: mix_total must be >= 0 (0: no total), got -5"),
        ((), {"HUM_MIX_TOTAL": "lots"},
         "hum run: settings: mix_total must be a whole number of rows, got 'lots'"),
    ],
)
def test_bad_mix_settings_are_one_line_before_anything_starts(tmp_path, args, extra, expected):
    proc = hum(tmp_path, "run", "--catalog", str(DEFAULT_CATALOG), "--skip-eval", *args,
               env=_env(tmp_path, **extra), timeout=120)
    lines = [line for line in (proc.stdout + proc.stderr).splitlines() if line.strip()]
    assert proc.returncode == 2 and lines == [expected], lines
