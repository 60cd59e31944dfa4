"""A first measured effect of the corpus, on the CPU: basic instructions only vs the Hum mix.

1. Sources: the real training files in ../shared/data (CrossNER politics and science
   ``train.txt``, CaRB, the IEPile NER/RE/SPO/EE/KG samples), declared ``split: train``
   in a catalog of their own. FewRel has no training split there: RE is trained only on
   the (Chinese) IEPile RE sample, so a FewRel change is transfer, not RE training.
2. The graph synthesizes them as ``hum run`` does (``synthesize_source`` and one
   ``synthesize_compound`` run per strategy, on a Dagster instance in the work folder,
   LLM offline: rule-based preference rows).
3. Two corpora from the same stored tables with the functions ``hum_corpus`` calls
   (``build_hum_corpus`` with the same tokenizer, token limits and decontamination
   against the evaluation sets, then ``export_corpus``): ``basic`` (basic instructions
   only) and ``hum`` (basic + compound, the paper's 55/45 mix), both ``--corpus-size``
   rows (the mix redistributes a task short of its share).
4. SmolLM2-135M-Instruct is LoRA-trained on each for the same ``--steps`` (the local
   training settings: rank 64, alpha 64, lr 5e-5, batch 4, 384/128 tokens).
5. The base model and both checkpoints are evaluated on ``--records`` CrossNER politics
   test records and FewRel records (the same seeded sample for every model) in style B
   and C; printed per cell: F1 in the three scoring modes and the parse-failure rate.

It is a benchmark, not a test: about an hour on 2 quiet cores at the defaults (80 steps
of 4 examples, 20 records per benchmark, 96 new tokens; the smoke run took 19 minutes on
a 2-core machine shared with five other jobs, most of it model loading and the
unmerged-LoRA generation since replaced by merged weights)::

    .venv/bin/python bench/cpu_effect.py --workdir /tmp/hum-cpu-effect > cpu_effect.txt 2>&1 &

``--smoke`` runs every stage at a tiny size (a few minutes). With ``--workdir`` of an
earlier run, finished stages are reused (sources, corpora, checkpoints).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from hum_dagster.paths import PROJECT_DIR, shared_data_dir  # noqa: E402

QUIET = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}
BENCHMARKS = ("crossner_politics", "fewrel")
STYLES = ("B", "C")
MODES = ("iepile", "strict", "lenient")


def catalog_entries(shared: Path) -> list[dict]:
    """The real training files of ../shared/data as catalog entries."""
    entries = []
    for domain in ("politics", "science"):
        entries.append({"name": f"crossner_{domain}_train", "task": "NER", "language": "en",
                        "format": "conll", "split": "train",
                        "location": str(shared / "crossner" / domain / "train.txt"),
                        "options": {"scheme": "BIO"}})
    entries.append({"name": "carb_dev", "task": "OpenIE", "language": "en", "format": "carb",
                    "split": "train", "location": str(shared / "carb" / "dev.tsv")})
    for task, folder in (("NER", "NER"), ("RE", "RE"), ("SPO", "SPO"), ("EE", "EE"), ("KGE", "KG")):
        entries.append({"name": f"iepile_{folder.lower()}", "task": task, "language": "zh",
                        "format": "iepile", "split": "train",
                        "location": str(shared / "iepile" / folder / "sample.json"),
                        "options": {"schema": str(shared / "iepile" / folder / "schema.json")}})
    return entries


def write_catalog(path: Path, entries: list[dict]) -> None:
    import yaml

    path.write_text(yaml.safe_dump({"sources": entries}, allow_unicode=True), encoding="utf-8")


def synthesize(names: list[str]) -> dict[str, int]:
    """Stage 2: the graph's source and compound jobs for every source (in this process)."""
    import dagster as dg

    from hum_dagster.cli.main import _failure, _materialization_counts
    from hum_dagster.definitions import defs
    from hum_dagster.defs.synthesis.partitions import COMPOUND_STRATEGIES

    instance = dg.DagsterInstance.get()
    counts = {"basic": 0, "compound": 0}
    for name in names:
        result = defs.resolve_job_def("synthesize_source").execute_in_process(
            partition_key=name, instance=instance, raise_on_error=False, run_config=QUIET)
        if not result.success:
            raise SystemExit(f"source {name}: {_failure(result)}")
        counts["basic"] += int(_materialization_counts(result).get("basic_instructions", {}).get("instructions", 0))
        for strategy in COMPOUND_STRATEGIES:
            run = defs.resolve_job_def("synthesize_compound").execute_in_process(
                partition_key=dg.MultiPartitionKey({"source": name, "strategy": strategy}),
                instance=instance, raise_on_error=False, run_config=QUIET)
            if run.success:
                meta = _materialization_counts(run).get("compound_instructions", {})
                counts["compound"] += int(meta.get("instructions", 0))
            else:
                print(f"  {name} x {strategy}: FAILED: {_failure(run)}", flush=True)
    return counts


def build_corpora(root: str, out: Path, size: int, seed: int) -> dict[str, dict]:
    """Stage 3: the ``basic`` and ``hum`` corpora, exported, from the stored tables."""
    import polars as pl

    from hum_dagster.corpus.build import HumCorpusConfig, build_hum_corpus
    from hum_dagster.corpus.decontam import BenchmarkIndex, DecontamConfig, benchmark_texts
    from hum_dagster.corpus.export import export_corpus
    from hum_dagster.corpus.mix import MixConfig
    from hum_dagster.corpus.tokens import load_tokenizer
    from hum_dagster.defs.resources.settings import HumSettings

    settings = HumSettings(storage_root=root)
    basic = sorted(Path(root, "basic_instructions").glob("*.parquet"))
    compound = sorted(Path(root, "compound_instructions").rglob("*.parquet"))
    tokenizer = load_tokenizer(settings.tokenizer)
    index = BenchmarkIndex.build(benchmark_texts(), DecontamConfig())
    plans = {
        "basic": ([pl.scan_parquet(p) for p in basic], {"basic": 1.0, "compound": 0.0}),
        "hum": ([pl.scan_parquet(p) for p in basic + compound], None),
    }
    report = {}
    for name, (tables, kinds) in plans.items():
        directory = out / name
        if (directory / "dataset_info.json").is_file():
            report[name] = json.loads((out / f"{name}.json").read_text())
            continue
        mix = MixConfig(total=size, mode="redistribute", seed=seed,
                        **({"kind_shares": kinds} if kinds else {}))
        config = HumCorpusConfig(seed=seed, variant="full", mix=mix,
                                 max_input_tokens=settings.max_input_tokens,
                                 max_output_tokens=settings.max_output_tokens)
        corpus = build_hum_corpus(tables, config, tokenizer=tokenizer, benchmark_index=index)
        export_corpus(tables, corpus.rows, str(directory))
        rows = corpus.rows
        report[name] = {
            "rows": rows.height,
            "kinds": dict(rows.group_by("kind").len().sort("kind").iter_rows()),
            "tasks": dict(rows.group_by("task").len().sort("task").iter_rows()),
            "split": corpus.report.get("split", {}),
        }
        (out / f"{name}.json").write_text(json.dumps(report[name]))
    return report


def train_checkpoint(data_dir: Path, output: Path, steps: int, root: str, seed: int) -> dict:
    """Stage 4: LoRA on SmolLM2 with the local settings, ``steps`` optimizer steps."""
    from hum_dagster.train import artifacts
    from hum_dagster.train.config import TrainingConfig, TrainingJob
    from hum_dagster.train.entry import PrintReporter, train
    from hum_dagster.train.launch import load_training_config

    record = artifacts.read_record(str(output))
    if record is not None:
        return record
    values = load_training_config(PROJECT_DIR / "resources" / "training" / "local.yaml")
    values.update(max_steps=steps, seed=seed, save_steps=max(steps, 1), eval_steps=None,
                  logging_steps=max(1, steps // 20))
    job = TrainingJob(base_model="smollm2-135m-instruct", dataset_dir=str(data_dir),
                      output_dir=str(output), config=TrainingConfig.from_dict(values),
                      storage_root=root, run_name=output.name)
    train(job, PrintReporter())
    record = artifacts.read_record(str(output))
    if record is None:
        raise SystemExit(f"training wrote no record in {output}")
    return record


def evaluate(models: dict[str, str | None], records: int, max_new_tokens: int, root: str,
             seed: int, batch_size: int) -> list[dict]:
    """Stage 5: every model on both benchmarks, both styles, one generation pass each."""
    from hum_dagster.evaluation.benchmarks import get_benchmark
    from hum_dagster.evaluation.compound_style import DictionaryStyle, benchmark_dictionary
    from hum_dagster.evaluation.generate import DecodingConfig
    from hum_dagster.evaluation.registry import ModelSpec, make_generator
    from hum_dagster.evaluation.run import SuiteItem, evaluate_suite

    items = []
    for name in BENCHMARKS:
        bench = get_benchmark(name)
        read = bench.read()
        items.append(SuiteItem(bench, read, {"C": DictionaryStyle(benchmark_dictionary(bench, read.schema, seed))}))
    decoding = DecodingConfig(greedy=True, max_new_tokens=max_new_tokens, seed=seed)
    out = []
    for model, adapter in models.items():
        t = time.perf_counter()
        spec = ModelSpec(name=model, backend="transformers", model="smollm2-135m-instruct", adapter=adapter)
        generator = make_generator(spec, decoding, storage_root=root, batch_size=batch_size)
        results = evaluate_suite(items, generator, STYLES, sample_size=records, seed=seed)
        for r in results:
            metric = "ner_f1" if r["benchmark"].startswith("crossner") else "re_f1"
            scores = r["scores"][metric]
            out.append({"model": model, "benchmark": r["benchmark"], "style": r["style"],
                        "records": scores["records"], "chunks": scores["chunks"],
                        **{f"F1_{m}": scores[m]["F1"] for m in MODES},
                        **{f"pf_{m}": scores[m]["parse_failure_rate"] for m in MODES}})
        print(f"  evaluated {model} in {time.perf_counter() - t:.0f} s "
              f"({generator.metadata.get('tokens_per_s')} tokens/s)", flush=True)
    return out


def print_table(cells: list[dict]) -> None:
    print("\nF1 (%) in the iepile / strict / lenient modes, and the parse-failure rate "
          "(iepile / lenient), per model, benchmark and style:")
    print(f"{'model':<8} {'benchmark':<18} {'style':<5} {'records':>7} {'chunks':>6} "
          f"{'F1 iepile':>9} {'strict':>7} {'lenient':>7} {'pf iepile':>9} {'pf lenient':>10}")
    for c in cells:
        print(f"{c['model']:<8} {c['benchmark']:<18} {c['style']:<5} {c['records']:>7} "
              f"{c['chunks']:>6} {c['F1_iepile']:>9.2f} {c['F1_strict']:>7.2f} "
              f"{c['F1_lenient']:>7.2f} {100 * c['pf_iepile']:>8.0f}% {100 * c['pf_lenient']:>9.0f}%")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workdir", help="keep everything here (and reuse finished stages)")
    parser.add_argument("--steps", type=int, default=80, help="LoRA optimizer steps per corpus")
    parser.add_argument("--corpus-size", type=int, default=2000, help="rows per corpus")
    parser.add_argument("--records", type=int, default=20, help="test records per benchmark")
    parser.add_argument("--max-new-tokens", type=int, default=96)
    parser.add_argument("--batch-size", type=int, default=8, help="generation batch")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--smoke", action="store_true",
                        help="every stage at a tiny size: 2 steps, 40 rows, 2 records, 16 tokens")
    args = parser.parse_args()
    if args.smoke:
        args.steps, args.corpus_size, args.records, args.max_new_tokens = 2, 40, 2, 16
    shared = shared_data_dir()
    if not shared.is_dir():
        raise SystemExit(f"benchmark and training data not found at {shared} (set HUM_SHARED_DATA)")
    work = Path(args.workdir or tempfile.mkdtemp(prefix="hum-cpu-effect-")).resolve()
    home = work / "home" / "dagster_home"
    home.mkdir(parents=True, exist_ok=True)
    if not (home / "dagster.yaml").exists():
        (home / "dagster.yaml").write_text((PROJECT_DIR / "resources" / "dagster.yaml").read_text())
    root = str(work / "storage")
    entries = catalog_entries(shared)
    write_catalog(work / "catalog.yaml", entries)
    os.environ.update({"DAGSTER_HOME": str(home), "HUM_HOME": str(work / "home"),
                       "HUM_STORAGE_ROOT": root, "HUM_CATALOG": str(work / "catalog.yaml"),
                       "HUM_LLM_MODE": "offline", "TOKENIZERS_PARALLELISM": "false"})
    started = time.perf_counter()
    print(f"work folder {work}; {os.cpu_count()} cores; steps {args.steps}, corpus {args.corpus_size} "
          f"rows, {args.records} records per benchmark, {args.max_new_tokens} new tokens", flush=True)

    t = time.perf_counter()
    done = work / "synthesized.json"
    if done.is_file():
        counts = json.loads(done.read_text())
    else:
        counts = synthesize([e["name"] for e in entries])
        done.write_text(json.dumps(counts))
    print(f"1. synthesis through the graph: {counts['basic']:,} basic, {counts['compound']:,} "
          f"compound instructions ({time.perf_counter() - t:.0f} s)", flush=True)

    t = time.perf_counter()
    corpora = build_corpora(root, work / "corpora", args.corpus_size, args.seed)
    for name, info in corpora.items():
        print(f"2. corpus {name}: {info['rows']} rows, kinds {info['kinds']}, tasks {info['tasks']}", flush=True)
    print(f"   ({time.perf_counter() - t:.0f} s)", flush=True)

    checkpoints = {}
    for name in ("basic", "hum"):
        t = time.perf_counter()
        output = work / "checkpoints" / name
        record = train_checkpoint(work / "corpora" / name, output, args.steps, root, args.seed)
        losses = [c["loss"] for c in record.get("loss_curve") or [] if "loss" in c]
        first, last = (losses[0], losses[-1]) if losses else (float("nan"), float("nan"))
        print(f"3. LoRA on {name}: {args.steps} steps, loss {first:.3f} -> {last:.3f} "
              f"({time.perf_counter() - t:.0f} s)", flush=True)
        checkpoints[name] = str(output / "adapter")

    t = time.perf_counter()
    cells = evaluate({"base": None, **checkpoints}, args.records, args.max_new_tokens, root,
                     args.seed, args.batch_size)
    print(f"4. evaluation: {time.perf_counter() - t:.0f} s", flush=True)
    print_table(cells)
    (work / "cells.json").write_text(json.dumps(cells, indent=1))
    print(f"\ntotal {time.perf_counter() - started:.0f} s; cells in {work / 'cells.json'}")


if __name__ == "__main__":
    main()
