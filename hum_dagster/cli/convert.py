"""``hum convert``: IEPile's ``convert_func.py`` interface on top of the basic synthesis.

Reads IEPile raw records and schema, writes IEPile-shaped JSON lines:

- ``--split train``: ``{"task", "source", "instruction", "output"}`` per instruction;
- ``--split test``: ``{"id", "task", "source", "instruction", "label"}`` where ``id`` is
  the SHA-256 of the text and ``label`` the record's IEPile label list.

As IEPile, every input line gives its output, repeated records included (``--dedup``
drops repeats, with one summary line). Unlike IEPile the result is deterministic
(``--seed``): schema items are sorted, or shuffled with a per-record generator under
``--random_sort``. A file none of whose lines reads as a record of ``--task`` is an
error (exit 2, nothing written), not an empty output. ``--templates`` replaces
the built-in instruction wording (e.g. with IEPile's own, for exact compatibility).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from hum_dagster.readers.catalog import CatalogEntry
from hum_dagster.records import EE, KGE, NER, RE, SPO, Record, SourceError
from hum_dagster.store.jsonfile import read_json_object
from hum_dagster.synthesis.basic import BasicConfig, SynthesisReport, synthesize_basic
from hum_dagster.synthesis.chunking import default_split_num
from hum_dagster.synthesis.templates import load_templates

CLI_TASKS = ("NER", "RE", "SPO", "EE", "EET", "EEA", "KG", "KGE")
# The source task to read for a command-line task, and the instruction task to make.
READ_TASK = {"EET": EE, "EEA": EE, "KG": KGE}
INSTRUCTION_TASK = {"KG": KGE}
PROG = "hum convert"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Convert IEPile raw data into IEPile-style instructions (train) or "
        "evaluation records (test).",
    )
    parser.add_argument("--src_path", required=True, help="IEPile raw JSON-lines file")
    parser.add_argument("--tgt_path", required=True, help="where to write the JSON lines")
    parser.add_argument("--schema_path", help="IEPile three-line schema file")
    parser.add_argument("--language", default="zh", choices=["zh", "en"])
    parser.add_argument("--task", default="NER", choices=CLI_TASKS)
    parser.add_argument("--split", default="train", choices=["train", "test"])
    parser.add_argument(
        "--split_num",
        type=int,
        default=None,
        help="most schema items per instruction; -1: no split (default: the task's "
        "default, NER 6, RE/SPO/EE/EET/EEA 4, KG 1)",
    )
    parser.add_argument(
        "--random_sort",
        action="store_true",
        help="shuffle schema items (seeded per record) instead of sorting them",
    )
    parser.add_argument(
        "--neg_schema",
        type=float,
        default=1.0,
        help="rate of negative schema items in train mode, 0..1 (default 1: all negatives)",
    )
    parser.add_argument(
        "--cluster_mode",
        action="store_true",
        help="sample hard negatives from --hard_negative_path instead of random ones",
    )
    parser.add_argument("--hard_negative_path", help="JSON object: label -> confusable labels")
    parser.add_argument(
        "--templates",
        help='JSON object "<TASK><lang>" -> instruction wording, replacing the built-in wording',
    )
    parser.add_argument("--seed", type=int, default=42, help="seed for all sampling (default 42)")
    parser.add_argument(
        "--dedup",
        action="store_true",
        help="drop records that repeat an earlier one (same text and labels); by default "
        "every input line gives its output, repeats included, as IEPile does",
    )
    return parser


def iepile_label(task: str, gold: dict[str, Any]) -> list[dict[str, Any]]:
    """The record's label list in IEPile's raw form, rebuilt from canonical gold."""
    if task == NER:
        return [{"entity": e["text"], "entity_type": e["type"]} for e in gold.get("entities", ())]
    if task == EE:
        return [
            {
                "event_trigger": e.get("trigger", ""),
                "event_type": e["event_type"],
                "arguments": [
                    {"argument": a["argument"], "role": a["role"]} for a in e.get("arguments", ())
                ],
            }
            for e in gold.get("events", ())
        ]
    if task == SPO:
        keys = ("head", "head_type", "relation", "tail", "tail_type")
        return [{k: r[k] for k in keys} for r in gold.get("relations", ())]
    if task in (RE, KGE):
        return [
            {"head": r["head"], "relation": r["relation"], "tail": r["tail"]}
            for r in gold.get("relations", ())
        ]
    raise ValueError(f"no IEPile label form for task {task}")


def _fail(message: str) -> int:
    print(f"{PROG}: error: {message}", file=sys.stderr)
    return 2


def _load_hard_negatives(path: str) -> dict[str, list[str]]:
    data = read_json_object(path, "hard-negative file")
    if not all(
        isinstance(v, list) and all(isinstance(x, str) for x in v) for v in data.values()
    ):
        raise ValueError(f"{path}: expected a JSON object from label to a list of labels")
    return {str(k): list(v) for k, v in data.items()}


def _lines(
    rows: Iterator[dict[str, Any]],
    records: dict[str, Record],
    cli_task: str,
    source: str,
    test: bool,
) -> Iterator[str]:
    read_task = READ_TASK.get(cli_task, cli_task)
    labels: dict[str, str] = {}
    for row in rows:
        if test:
            record_id = row["record_id"]
            label = labels.get(record_id)
            if label is None:
                gold = records[record_id].gold
                label = labels[record_id] = json.dumps(
                    iepile_label(read_task, gold), ensure_ascii=False
                )
            out = {
                "id": row["text_id"],
                "task": cli_task,
                "source": source,
                "instruction": row["instruction"],
                "label": label,
            }
        else:
            out = {
                "task": cli_task,
                "source": source,
                "instruction": row["instruction"],
                "output": row["output"],
            }
        yield json.dumps(out, ensure_ascii=False) + "\n"


def _write_lines(path: str, lines: Iterator[str]) -> int:
    """Write atomically: a sibling temp file renamed into place (never a partial file)."""
    count = 0
    if "://" in path:
        from hum_dagster.store import fsio

        chunks = []
        for line in lines:
            chunks.append(line)
            count += 1
        fsio.write_bytes_atomic(path, "".join(chunks).encode("utf-8"))
        return count
    target = Path(path)
    if target.parent and not target.parent.exists():
        target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.tmp-{uuid.uuid4().hex}")
    try:
        with open(tmp, "w", encoding="utf-8") as handle:
            for line in lines:
                handle.write(line)
                count += 1
        os.replace(tmp, target)
    finally:
        if tmp.exists():
            tmp.unlink()
    return count


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from hum_dagster.readers.iepile import read_iepile  # readers register on import

    cli_task = args.task
    read_task = READ_TASK.get(cli_task, cli_task)
    task = INSTRUCTION_TASK.get(cli_task, cli_task)
    split_num = args.split_num if args.split_num is not None else default_split_num(task)
    if split_num != -1 and split_num < 1:
        return _fail(f"--split_num must be -1 or a positive integer, got {split_num}")
    if not 0.0 <= args.neg_schema <= 1.0:
        return _fail(f"--neg_schema must lie in [0, 1], got {args.neg_schema}")
    if args.cluster_mode and not args.hard_negative_path:
        return _fail("--cluster_mode needs --hard_negative_path")

    if "://" not in args.tgt_path and os.path.isdir(args.tgt_path):
        return _fail(f"--tgt_path {args.tgt_path} is a directory; give the file to write")
    src = os.path.abspath(args.src_path) if "://" not in args.src_path else args.src_path
    source = Path(args.src_path).parent.name or Path(src).parent.name
    options: dict[str, Any] = {"duplicates": "drop"} if args.dedup else {}
    if args.schema_path:
        options["schema"] = (
            os.path.abspath(args.schema_path) if "://" not in args.schema_path else args.schema_path
        )
    entry = CatalogEntry(
        name=source or "iepile",
        task=read_task,
        language=args.language,
        format="iepile",
        location=src,
        split="test" if args.split == "test" else "train",
        options=options,
    )
    try:
        templates = load_templates(args.templates)
        hard = _load_hard_negatives(args.hard_negative_path) if args.cluster_mode else None
        result = read_iepile(entry)
        name = os.path.basename(src)

        def where(origin: str) -> str:
            return src + origin[len(name) :] if origin.startswith(name) else origin

        if result.quarantine and not result.records:
            first = result.quarantine[0]
            return _fail(
                f"no record of {src} reads as an IEPile {read_task} record "
                f"({len(result.quarantine)} skipped, the first {where(first.origin)}: "
                f"{first.reason}); is --task {cli_task} right?"
            )
        for bad in result.quarantine:
            print(f"{PROG}: warning: skipped {where(bad.origin)}: {bad.reason}", file=sys.stderr)
        if args.dedup and result.duplicates:
            print(f"{PROG}: {result.duplicate_summary()}", file=sys.stderr)
        config = BasicConfig(
            mode=args.split,
            split_num={task: split_num},
            neg_rate=args.neg_schema,
            random_sort=args.random_sort,
            hard_negatives=hard,
            seed=args.seed,
            templates=templates,
            kge_attributes_key="attribute",  # IEPile's converter's spelling (OneKE: attributes)
        )
        records = {r.record_id: r for r in result.records}
        report = SynthesisReport()
        rows = synthesize_basic(result.records, result.schema, config, tasks=[task], report=report)
        count = _write_lines(
            args.tgt_path, _lines(rows, records, cli_task, source, args.split == "test")
        )
        for bad in report.quarantined:
            print(f"{PROG}: warning: skipped {where(bad.origin)}: {bad.reason}", file=sys.stderr)
    except SourceError as exc:
        return _fail(str(exc))
    except ValueError as exc:
        return _fail(str(exc))
    except OSError as exc:
        target = exc.filename or args.tgt_path
        return _fail(f"cannot write {target}: {exc.strerror or exc}")
    skipped = len(result.quarantine) + len(report.quarantined)
    print(
        f"{PROG}: wrote {count} {args.split} rows from {len(result.records)} records "
        f"({skipped} skipped) to {args.tgt_path}",
        file=sys.stderr,
    )
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
