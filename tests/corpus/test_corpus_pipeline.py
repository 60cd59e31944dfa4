"""The Hum corpus: mixing, de-duplication, token limits, decontamination, variants, export."""

from __future__ import annotations

import json
import random
from pathlib import Path

import polars as pl
import pytest
import tokenizers

from hum_dagster.corpus.build import HumCorpusConfig, build_hum_corpus
from hum_dagster.corpus.charts import corpus_stats, write_chart
from hum_dagster.corpus.decontam import BenchmarkIndex, DecontamConfig, decontaminate
from hum_dagster.corpus.export import export_corpus
from hum_dagster.corpus.mix import (
    GUIDELINE_STRATEGIES,
    PAPER_TASK_SHARES,
    MixConfig,
    build_variant,
    mix,
)
from hum_dagster.corpus.tokens import from_json, load_tokenizer
from hum_dagster.store import fsio
from hum_dagster.synthesis.columns import COMPOUND_COLUMNS, instruction_frame

WORDS = [f"w{i}" for i in range(5000)]


def text(seed: int, n: int = 20) -> str:
    rnd = random.Random(seed)
    return " ".join(rnd.choice(WORDS) for _ in range(n))


def row(task: str, i: int, strategy: str = "basic", **kw) -> dict:
    body = text(hash((task, i)) & 0xFFFFFF)
    base = {
        "instruction_id": f"{strategy[:4]}-{task}-{i}",
        "source": f"src_{task}",
        "record_id": f"{task}-{i}",
        "text_id": f"{task}-{i}",
        "task": task,
        "language": "en",
        "mode": "train",
        "strategy": strategy,
        "template": "t",
        "chunk_index": 0,
        "n_chunks": 1,
        "schema": '["a"]',
        "instruction": json.dumps(
            {"instruction": f"do {strategy}", "schema": ["a"], "input": body}
        ),
        "output": json.dumps({"a": [body.split()[0]]}),
        "base_instruction_id": f"basi-{task}-{i}" if strategy != "basic" else None,
        "variant": "markdown" if strategy == "format_variants" else None,
    }
    base.update(kw)
    return base


def pool(n_per_cell: int = 200, scarce: dict | None = None) -> pl.DataFrame:
    rows = []
    compound = (*GUIDELINE_STRATEGIES, "preference_rules", "format_variants")
    for task in PAPER_TASK_SHARES:
        n = (scarce or {}).get(task, n_per_cell)
        for i in range(n):
            rows.append(row(task, i))
            if task != "IG":
                rows.append(row(task, i, compound[i % len(compound)]))
    return instruction_frame(rows, COMPOUND_COLUMNS)


def test_mix_hits_the_target_proportions():
    result = mix(pool(), MixConfig(total=1000))
    assert result.rows.height == 1000
    kinds = result.report["achieved_kind"]
    assert (
        abs(kinds["basic"] - 0.55) <= 0.002 and abs(kinds["compound"] - 0.45) <= 0.002
    )  # rounding
    for task, share in PAPER_TASK_SHARES.items():
        assert abs(result.report["achieved_task"][task] - share) <= 0.001, task
    assert (
        result.rows.filter((pl.col("task") == "IG") & (pl.col("strategy") != "basic")).height == 0
    )


def test_supply_limits_are_reported_strict_and_redistributed():
    rows = pool(scarce={"EEA": 4})
    strict = mix(rows, MixConfig(total=2000, mode="strict"))
    assert any("compound EEA limited by supply: 4 available" in x for x in strict.report["limited"])
    assert strict.rows.height < 2000
    spread = mix(rows, MixConfig(total=2000, mode="redistribute"))  # the old name of fill
    assert spread.report["mode"] == "fill" and spread.rows.height == 2000
    largest = mix(rows, MixConfig(mode="strict"))
    assert any("total limited by" in x and "EEA" in x for x in largest.report["limited"])
    assert largest.rows.filter(pl.col("task") == "EEA").height <= 8


def per_task(result) -> dict[str, dict]:
    return {r["task"]: r for r in result.report["per_task"]}


def test_fill_uses_every_usable_row_by_default():
    """The default mix takes every row of the pool: a task with few rows no longer cuts
    the others down to its own scale (strict on the same pool: a few dozen rows)."""
    rows = pool(100, scarce={"KGE": 2, "MRC": 0})
    strict = mix(rows, MixConfig(mode="strict"))
    filled = mix(rows, MixConfig())
    assert filled.report["mode"] == "fill"
    assert filled.rows.height == rows.height  # every row
    assert filled.rows["instruction_id"].n_unique() == rows.height
    assert strict.rows.height < 60 < rows.height
    tasks = per_task(filled)
    assert tasks["NER"]["available"] == tasks["NER"]["used"] == 200
    assert tasks["NER"]["limited_by"] == "all available"
    assert tasks["KGE"]["used"] == 4 and tasks["KGE"]["limited_by"] == "all available"
    assert tasks["MRC"] == {**tasks["MRC"], "available": 0, "used": 0, "limited_by": "no rows"}
    assert tasks["MRC"]["wanted"] > 0  # its share of the total, reported though unfilled
    assert sum(t["used"] for t in tasks.values()) == filled.rows.height
    # the achieved shares are the supply's, reported beside the target
    assert tasks["NER"]["achieved_share"] == round(200 / rows.height, 4)
    assert tasks["NER"]["target_share"] == 0.23


def test_fill_with_a_total_water_fills_toward_the_shares():
    """With a total, each task gets min(available, its share) and what short tasks cannot
    take goes to the tasks with rows left, in proportion to their shares."""
    rows = pool(400, scarce={"KGE": 5, "EEA": 0})
    total = 2000
    result = mix(rows, MixConfig(total=total))
    assert result.rows.height == total
    tasks = per_task(result)
    assert tasks["KGE"]["used"] == 10 and tasks["KGE"]["limited_by"] == "all available"
    assert tasks["EEA"]["limited_by"] == "no rows" and tasks["EEA"]["used"] == 0
    # a task wanting less than its rows is capped at one common water level
    capped = [t for t in tasks.values() if t["limited_by"] == "capped by the task's share of the total"]
    assert {t["task"] for t in capped} >= {"NER", "RE", "SPO", "OpenIE"}
    levels = [t["used"] / PAPER_TASK_SHARES[t["task"]] for t in capped]
    assert max(levels) - min(levels) <= 1 / min(PAPER_TASK_SHARES[t["task"]] for t in capped)
    for t in capped:  # each capped task gets more than its plain share of the total
        assert t["used"] >= t["wanted"] and t["used"] < t["available"]
    # within a task the kinds still follow the fitted cell shares (rows to spare)
    ner = result.rows.filter(pl.col("task") == "NER")
    basic = (ner["strategy"] == "basic").sum() / ner.height
    assert 0.45 < basic < 0.65


def test_fill_total_above_the_supply_takes_everything_and_says_so():
    rows = pool(20)
    result = mix(rows, MixConfig(total=10 * rows.height))
    assert result.rows.height == rows.height
    assert any("not reached" in n for n in result.report["notes"])
    assert all(t["limited_by"] == "all available" for t in result.report["per_task"])


def test_strict_still_matches_the_paper_and_says_what_limited_each_task():
    rows = pool(100, scarce={"KGE": 10})
    result = mix(rows, MixConfig(mode="strict"))
    tasks = per_task(result)
    n = result.rows.height
    for task, share in PAPER_TASK_SHARES.items():
        assert abs(tasks[task]["used"] / n - share) <= 1.5 / n + 1e-9, task
    assert tasks["KGE"]["limited_by"].startswith("all available; sets the total")
    assert tasks["NER"]["limited_by"].startswith("capped to keep the exact proportions")
    assert "KGE" in tasks["NER"]["limited_by"]


def test_a_task_outside_the_shares_is_reported_not_used():
    rows = pool(20)
    result = mix(rows, MixConfig(task_shares={"NER": 1, "RE": 1}))
    tasks = per_task(result)
    assert result.rows["task"].unique().sort().to_list() == ["NER", "RE"]
    assert tasks["KGE"]["limited_by"] == "not in the task shares" and tasks["KGE"]["used"] == 0
    assert tasks["KGE"]["available"] == 40


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"mode": "balanced"}, "unknown mix mode 'balanced'; expected one of fill, strict"),
        ({"total": -5}, "mix total must be >= 0, got -5"),
        ({"total": 2.5}, "mix total must be a whole number of rows"),
        ({"compound": "some"}, "unknown compound source 'some'; expected one of all, combined"),
    ],
)
def test_bad_mix_config_is_one_clear_line(kwargs, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(")) as info:
        MixConfig(**kwargs)
    assert "\n" not in str(info.value)


def test_compound_rows_from_the_combined_strategy_only():
    """``compound="combined"``: the corpus's compound rows are the combined strategy's
    (the paper's compound instructions), never a standalone strategy's row; an ablation
    takes its replacements from the same rows."""
    rows = pool(60)
    extra = [row(task, i, "combined", strategies="description+examples" if i % 3 else
                 "format_variants") for task in PAPER_TASK_SHARES if task != "IG" for i in range(60)]
    rows = pl.concat([rows, instruction_frame(extra, COMPOUND_COLUMNS)], how="diagonal_relaxed")
    everything = mix(rows, MixConfig())
    assert set(everything.rows["strategy"].unique()) > {"basic", "combined"}
    combined = mix(rows, MixConfig(compound="combined"))
    assert set(combined.rows["strategy"].unique()) == {"basic", "combined"}
    assert combined.rows.height == rows.filter(pl.col("strategy").is_in(["basic", "combined"])).height
    ablated = build_variant(rows, "no_format_variants", MixConfig(compound="combined"))
    assert set(ablated.rows["strategy"].unique()) <= {"basic", "combined"}
    assert not ablated.rows["strategies"].cast(pl.String).str.contains("format_variants").any()


def test_water_fill_spreads_a_short_share():
    from hum_dagster.corpus.mix import water_fill

    got = water_fill({"a": 0.5, "b": 0.25, "c": 0.25}, {"a": 10, "b": 1000, "c": 1000}, 100)
    assert got == {"a": 10, "b": 45, "c": 45}
    assert water_fill({"a": 1, "b": 1}, {"a": 3, "b": 4}, 100) == {"a": 3, "b": 4}
    assert sum(water_fill({"a": 1, "b": 2, "c": 3}, {"a": 9, "b": 9, "c": 9}, 10).values()) == 10


def test_same_bytes_for_shuffled_input(tmp_path):
    rows = pool(60)
    shuffled = rows.sample(fraction=1.0, shuffle=True, seed=3)
    outs = []
    for i, frame in enumerate((rows, shuffled)):
        corpus = build_hum_corpus([frame], HumCorpusConfig(validation_fraction=0.1))
        export_corpus([frame], corpus.rows, str(tmp_path / str(i)), bucket_rows=50)
        outs.append(
            [
                (tmp_path / str(i) / f).read_bytes()
                for f in ("hum_train.jsonl", "hum_validation.openai.jsonl")
            ]
        )
    assert outs[0] == outs[1]
    assert len(outs[0][0]) > 1000


def test_the_keys_go_to_a_work_folder_that_is_removed_and_memory_is_reported(tmp_path):
    rows = pool(60)
    work = tmp_path / "work"
    work.mkdir()
    corpus = build_hum_corpus([rows], HumCorpusConfig(workdir=str(work), memory_mb=64))
    assert corpus.report["keys_bytes"] > 0  # the per-row keys were written there ...
    assert list(work.iterdir()) == []  # ... and removed with the store
    phases = corpus.report["memory_mb"]
    assert list(phases) == ["after_scan", "after_dedup", "after_mix", "after_split"]
    assert list(phases.values()) == sorted(phases.values())  # a high-water mark


def test_near_duplicates_removed_different_rows_kept():
    a = row("NER", 1)
    near = dict(
        a,
        instruction_id="z-near",
        record_id="other",
        instruction=a["instruction"].replace("w", "v", 1),
    )
    other = row("NER", 2)
    frame = instruction_frame([a, near, other], COMPOUND_COLUMNS)
    corpus = build_hum_corpus(
        [frame], HumCorpusConfig(mix=MixConfig(task_shares={"NER": 1}, kind_shares={"basic": 1}))
    )
    kept = set(corpus.rows["instruction_id"])
    assert kept == {a["instruction_id"], other["instruction_id"]}
    assert corpus.report["near_duplicates"] == 1
    assert corpus.removed.filter(pl.col("reason") == "near_duplicate")[
        "instruction_id"
    ].to_list() == ["z-near"]


def tiny_tokenizer():
    vocab = {"[UNK]": 0, **{w: i + 1 for i, w in enumerate(WORDS)}}
    tok = tokenizers.Tokenizer(tokenizers.models.WordLevel(vocab, unk_token="[UNK]"))
    tok.pre_tokenizer = tokenizers.pre_tokenizers.Whitespace()
    return from_json(tok.to_str(), "tiny-wordlevel")


@pytest.fixture(scope="module")
def real_tokenizer():
    try:
        return load_tokenizer("smollm2-135m-instruct")
    except Exception:
        return tiny_tokenizer()


def test_token_limits_with_a_real_tokenizer(real_tokenizer):
    long = row(
        "NER", 1, instruction=json.dumps({"instruction": "x", "input": " ".join(["w1"] * 400)})
    )
    long_out = row("NER", 2, output=" ".join(["w2"] * 200))
    ok = row("NER", 3)
    frame = instruction_frame([long, long_out, ok], COMPOUND_COLUMNS)
    config = HumCorpusConfig(
        max_input_tokens=300,
        max_output_tokens=100,
        mix=MixConfig(task_shares={"NER": 1}, kind_shares={"basic": 1}),
    )
    for tok in (real_tokenizer, tiny_tokenizer()):
        corpus = build_hum_corpus([frame], config, tokenizer=tok)
        assert corpus.rows["instruction_id"].to_list() == [ok["instruction_id"]], tok.name
        assert corpus.report["too_long"] == 2
        counts = tok.count([" ".join(["w1"] * 400)])
        assert counts[0] >= 400


def test_decontamination_removes_benchmark_sentences():
    bench = (
        "the committee approved the new budget for the northern railway line after a long debate"
    )
    index = BenchmarkIndex.build(
        [
            ("crossner_politics", "en", bench),
            ("c3", "zh", "今天天气很好我们一起去公园散步然后去吃饭好不好"),
        ],
        DecontamConfig(),
    )
    dirty = row(
        "NER",
        1,
        instruction=json.dumps(
            {"instruction": "x", "input": "Reports say " + bench.upper() + " ."}
        ),
    )
    dirty_zh = row(
        "MRC",
        2,
        language="zh",
        instruction=json.dumps(
            {"input": "文章：他说今天天气很好我们一起去公园散步然后去吃饭好不好。"}
        ),
    )
    clean = row(
        "NER",
        3,
        instruction=json.dumps({"instruction": "x", "input": "the committee approved the plan"}),
    )
    frame = instruction_frame([dirty, dirty_zh, clean], COMPOUND_COLUMNS)
    kept, removed, report = decontaminate(frame, index)
    assert kept["instruction_id"].to_list() == [clean["instruction_id"]]
    assert sorted(removed["contaminated_by"].to_list()) == ["c3", "crossner_politics"]
    assert report["removed"] == 2 and report["by_benchmark"] == {"c3": 1, "crossner_politics": 1}


@pytest.mark.parametrize("variant", ["no_guidelines", "no_preference_rules", "no_format_variants"])
def test_ablation_variants_keep_size_and_drop_strategies(variant):
    rows = pool(100)
    config = MixConfig(mode="strict")  # the largest total at the paper's shares
    full = build_variant(rows, "full", config)
    ablated = build_variant(rows, variant, config)
    size = full.rows.height
    from hum_dagster.corpus.mix import VARIANTS

    assert ablated.rows.filter(pl.col("strategy").is_in(VARIANTS[variant])).height == 0
    report = ablated.report["variant"]
    assert report["removed"] > 0 and report["replaced_by_base"] > 0
    assert ablated.rows["instruction_id"].n_unique() == ablated.rows.height  # no row twice
    full_tasks = dict(full.rows.group_by("task").len().iter_rows())
    tasks = dict(ablated.rows.group_by("task").len().iter_rows())
    if report["not_replaced"] == 0:  # every left-out row replaced: full's size and counts
        assert size > 200 and ablated.rows.height == size and report["scaled_to"] == 1.0
        assert tasks == full_tasks and report["task_share_max_difference"] == 0.0
    else:  # the binding task ran out of replacements: every task cut to the same fraction
        assert report["scaled_to"] < 1.0 and ablated.rows.height < size
        for task, n in full_tasks.items():
            assert abs(tasks[task] - n * report["scaled_to"]) <= 0.5 + 1e-9, task
        assert report["task_share_max_difference"] < 0.01
    # both mixes are reported side by side
    side = ablated.report["achieved"]
    assert set(side) == {"full", variant} and set(side["full"]["task"]) == set(side[variant]["task"])
    assert side[variant]["kind"]["basic"] > side["full"]["kind"]["basic"]


@pytest.mark.parametrize("total", [None, 600])
def test_fill_mode_ablations_keep_the_task_mix_of_full_and_never_repeat_a_row(total):
    """In fill mode too, an ablation turns its left-out compound rows back into basic rows
    of the same task. With every row in ``full`` (no total) no basic row is left unused:
    nothing replaces them, and every task is cut to the same fraction of its rows in
    ``full``, so the task mix stays that of ``full`` on fewer rows, none twice. With a total
    below the supply unused basic rows take most of their places."""
    rows = pool(100, scarce={"KGE": 6})
    config = MixConfig(total=total)
    full = build_variant(rows, "full", config)
    for variant in ("no_guidelines", "no_format_variants"):
        ablated = build_variant(rows, variant, config)
        report = ablated.report["variant"]
        assert report["removed"] > 0
        assert ablated.rows["instruction_id"].n_unique() == ablated.rows.height  # no repeats
        full_tasks = dict(full.rows.group_by("task").len().iter_rows())
        tasks = dict(ablated.rows.group_by("task").len().iter_rows())
        assert set(tasks) == set(full_tasks), variant
        for task, n in full_tasks.items():  # the same fraction of every task
            assert abs(tasks[task] - n * report["scaled_to"]) <= 0.5 + 1e-9, (variant, task)
        assert report["task_share_max_difference"] < 0.01
        assert report["rows"] == ablated.rows.height
        if total is None:
            assert full.rows.height == rows.height
            assert report["not_replaced"] > 0 and report["scaled_to"] < 1.0
            assert ablated.rows.height < full.rows.height
        else:
            assert full.rows.height == total and report["replaced_by_base"] > 0
            # only the scarce KGE, whose rows full takes all of, runs out of replacements
            assert report["not_replaced"] < report["removed"] and ablated.rows.height <= total


def test_an_ablation_never_refills_from_another_task():
    """MRC is scarce in basic rows: full takes them all, and the ablation's removed MRC
    compound rows must not become NER or RE rows (MRC's share stays that of full)."""
    rows = pool(60, scarce={"MRC": 8})
    config = MixConfig(mode="redistribute", total=500)
    full = build_variant(rows, "full", config)
    ablated = build_variant(rows, "no_guidelines", config)
    def share(frame, task):
        return (frame["task"] == task).sum() / frame.height

    for task in PAPER_TASK_SHARES:
        assert share(ablated.rows, task) == pytest.approx(share(full.rows, task), abs=0.005), task
    mrc_removed = full.rows.filter(
        (pl.col("task") == "MRC") & pl.col("strategy").is_in(GUIDELINE_STRATEGIES)
    ).height
    assert mrc_removed > 0 and ablated.report["variant"]["not_replaced"] > 0
    assert ablated.rows["instruction_id"].n_unique() == ablated.rows.height


def test_openai_export_format_and_chart(tmp_path):
    ig = row("IG", 1, instruction="Hi", output="Hello", system="Be brief.", history='[["q", "a"]]')
    frame = instruction_frame([ig, row("NER", 1)], COMPOUND_COLUMNS)
    corpus = build_hum_corpus(
        [frame],
        HumCorpusConfig(
            mix=MixConfig(total=None, kind_shares={"basic": 1}, task_shares={"IG": 1, "NER": 1})
        ),
    )
    export_corpus([frame], corpus.rows, str(tmp_path))
    lines = []
    for split in ("train", "validation"):
        lines += [
            json.loads(x) for x in (tmp_path / f"hum_{split}.openai.jsonl").read_text().splitlines()
        ]
    chat = next(x for x in lines if x["messages"][0]["role"] == "system")
    assert chat == {
        "messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "q"},
            {"role": "assistant", "content": "a"},
            {"role": "user", "content": "Hi"},
            {"role": "assistant", "content": "Hello"},
        ]
    }
    info = json.loads((tmp_path / "dataset_info.json").read_text())
    assert info["hum_train_openai"]["file_name"] == "hum_train.openai.jsonl"
    stats = corpus_stats(corpus.rows)
    assert stats["by_task"] == {"IG": 1, "NER": 1}
    write_chart(str(tmp_path / "c.png"), stats)
    assert (tmp_path / "c.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_export_to_s3(s3_bucket):
    frame = pool(10)
    corpus = build_hum_corpus([frame], HumCorpusConfig(validation_fraction=0.2))
    root = f"{s3_bucket}/corpus"
    export_corpus([frame], corpus.rows, root)
    with fsio.open_text(f"{root}/hum_train.openai.jsonl") as handle:
        n = sum(1 for line in handle if json.loads(line)["messages"])
    assert n == (corpus.rows["split"] == "train").sum()
    assert "hum_validation_openai" in json.loads(fsio.read_bytes(f"{root}/dataset_info.json"))


def test_batched_reading_numbers_rows_like_the_whole_source(tmp_path):
    """Parquet parts read slice by slice (test-mode rows in between, a basic table without
    the compound columns) give the same ``_row`` numbering as the concatenated source."""
    from hum_dagster.corpus.build import train_batches, train_rows
    from hum_dagster.synthesis.columns import INSTRUCTION_COLUMNS

    rows = pool(40)
    basic = rows.filter(pl.col("strategy") == "basic").select(INSTRUCTION_COLUMNS)
    compound = rows.filter(pl.col("strategy") != "basic")
    flipped = basic.with_columns(
        pl.when(pl.int_range(pl.len()) % 7 == 3).then(pl.lit("test")).otherwise("mode").alias("mode")
    )
    paths = []
    for i, frame in enumerate((flipped, compound)):
        paths.append(str(tmp_path / f"{i}.parquet"))
        frame.write_parquet(paths[-1], row_group_size=17)
    scans = [pl.scan_parquet(p) for p in paths]
    whole = train_rows([flipped, compound]).collect()
    assert whole.height < rows.height  # the test-mode rows are gone
    batched = pl.concat(train_batches(scans, ["instruction_id", "output"], batch_rows=23))
    assert batched["_row"].to_list() == list(range(whole.height))
    assert batched["instruction_id"].to_list() == whole["instruction_id"].to_list()
    assert max(b.height for b in train_batches(scans, ["output"], batch_rows=23)) == 23


def test_batches_are_bounded_by_bytes_as_well_as_rows(tmp_path, monkeypatch):
    # a table of long rows is read in fewer rows per batch than one of short rows, and
    # the batches still hold every train row once, in order
    from hum_dagster.corpus import build
    from hum_dagster.corpus.build import train_batches

    monkeypatch.setattr(build, "FIRST_ROWS", 10)
    rows = pool(400)
    long = rows.with_columns((pl.col("output") + pl.lit("x" * 5_000)).alias("output"))
    paths = []
    for i, frame in enumerate((rows, long)):
        paths.append(str(tmp_path / f"{i}.parquet"))
        frame.write_parquet(paths[-1])
    for path, frame in zip(paths, (rows, long), strict=True):
        batches = list(train_batches([pl.scan_parquet(path)], ["output"], batch_rows=300,
                                     batch_bytes=200_000))
        sizes = [b.height for b in batches]
        assert pl.concat(batches)["output"].to_list() == frame["output"].to_list()
        if frame is long:  # about 5 kB a row: 40 rows make 200 kB
            assert sizes[0] == 10 and 30 <= max(sizes[1:]) <= 45, sizes
        else:
            assert max(sizes) == 300, sizes


def test_kept_export_parts_are_the_corpus_table_in_rank_order(tmp_path):
    from hum_dagster.corpus.build import corpus_frame

    rows = pool(60)
    corpus = build_hum_corpus([rows], HumCorpusConfig(validation_fraction=0.1))
    parts = tmp_path / "parts"
    result = export_corpus([rows], corpus.rows, str(tmp_path / "out"), bucket_rows=50,
                           table_dir=str(parts))
    assert len(result.table_parts) > 2  # several buckets, concatenated in name order
    table = pl.scan_parquet(result.table_parts).collect()
    expected = corpus_frame([rows], corpus)
    assert table.columns == expected.columns
    assert table.equals(expected)
    assert table["rank"].is_sorted()
    # read in many small batches (each joined with the selection's rows in its range):
    # the same files
    again = export_corpus([rows], corpus.rows, str(tmp_path / "again"), bucket_rows=50,
                          batch_rows=7, table_dir=str(tmp_path / "parts2"))
    assert pl.scan_parquet(again.table_parts).collect().equals(expected)
    for split, path in result.files.items():
        assert Path(path).read_bytes() == Path(again.files[split]).read_bytes(), split


def test_the_split_is_by_text_so_no_text_is_in_both():
    from hum_dagster.corpus.build import SPLIT_CHECK, split_problems

    rows = pool(80)  # every text has its basic row and one compound row
    corpus = build_hum_corpus([rows], HumCorpusConfig(validation_fraction=0.2, near_dup=False))
    chosen = corpus.rows
    assert set(chosen["split"].unique()) == {"train", "validation"}
    texts = rows.select("instruction_id", "text_id")
    by_text = (
        chosen.join(texts, on="instruction_id").group_by("text_id").agg(pl.col("split").n_unique())
    )
    assert by_text["split"].max() == 1
    assert split_problems(chosen) == [] and corpus.report["texts_in_both_splits"] == 0
    assert corpus.report["split_by"] == "text"
    # one row of a text with several rows moved to the other split fails the check
    sizes = chosen.group_by("split_key").len().filter(pl.col("len") > 1).sort("split_key")
    key = sizes["split_key"][0]
    first = chosen.with_row_index("_i").filter(pl.col("split_key") == key)["_i"][0]
    moved = chosen.with_row_index("_i").with_columns(
        pl.when(pl.col("_i") == first)
        .then(pl.when(pl.col("split") == "train").then(pl.lit("validation")).otherwise(pl.lit("train")))
        .otherwise(pl.col("split"))
        .alias("split")
    )
    (problem,) = split_problems(moved)
    assert problem.check == SPLIT_CHECK


def test_min_validation_takes_whole_texts():
    from hum_dagster.corpus.build import assign_split

    frame = pl.DataFrame(
        {"_row": list(range(6)), "instruction_id": [f"i{i}" for i in range(6)],
         "split_key": [5, 5, 5, 9, 9, 7]}
    )
    split = assign_split(frame, seed=1, fraction=0.0, min_validation=1)
    val = split.filter(pl.col("split") == "validation")["split_key"].unique().to_list()
    assert val == [5] and (split["split"] == "validation").sum() == 3


def test_minhash_keys_on_several_threads_are_those_on_one():
    import numpy as np

    from hum_dagster.corpus.dedup import NearDupConfig, band_keys

    texts = [f"text {i} about {'things ' * (i % 13)} and {i * 7}" for i in range(1_200)]
    one = band_keys(texts, NearDupConfig(), batch=100)
    two = band_keys(texts, NearDupConfig(), batch=100, threads=2)
    whole = band_keys(texts, NearDupConfig(), batch=10_000, chars=10**9)
    by_chars = band_keys(texts, NearDupConfig(), chars=500)  # a few texts a sub-batch
    assert one.shape == (1_200, NearDupConfig().bands)
    assert np.array_equal(one, two)
    assert np.array_equal(one, whole) and np.array_equal(one, by_chars)


def test_export_lines_are_the_bytes_json_dumps_writes(tmp_path):
    """The JSON lines are written by msgspec (``hum_dagster.jsontext``): each line is what
    ``json.dumps(row, ensure_ascii=False)`` writes, escapes and non-ASCII text included."""
    from hum_dagster.corpus.export import alpaca_row, openai_row

    texts = ['Zoë said "hi"\\n\tthen left', "北京 \u2028 line", "emoji \U0001f600 / slash </b>"]
    rows = [row("IG", i, instruction=t, output=t[::-1], system="Sé breve.",
                history=json.dumps([[t, "a\u0007"]])) for i, t in enumerate(texts)]
    frame = instruction_frame(rows, COMPOUND_COLUMNS)
    corpus = build_hum_corpus(
        [frame], HumCorpusConfig(mix=MixConfig(
            total=None, kind_shares={"basic": 1}, task_shares={"IG": 1}))
    )
    export_corpus([frame], corpus.rows, str(tmp_path))
    by_instruction = {r["instruction"]: r for r in frame.to_dicts()}
    for suffix, maker in ((".jsonl", alpaca_row), (".openai.jsonl", openai_row)):
        lines = [line for split in ("train", "validation")
                 for line in (tmp_path / f"hum_{split}{suffix}").read_bytes().split(b"\n")[:-1]]
        assert len(lines) == corpus.rows.height == len(texts)
        for line in lines:
            instruction = json.loads(line)["instruction"] if suffix == ".jsonl" else next(
                m["content"] for m in reversed(json.loads(line)["messages"]) if m["role"] == "user")
            expected = json.dumps(maker(by_instruction[instruction]), ensure_ascii=False)
            assert line == expected.encode("utf-8")
