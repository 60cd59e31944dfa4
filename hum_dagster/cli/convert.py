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
import os
import sys
import uuid
from pathlib import Path
from typing import Any

from hum_dagster.readers.catalog import CatalogEntry
from hum_dagster.records import EE, KGE, NER, RE, SPO, SourceError
from hum_dagster.store.jsonfile import read_json_object
from hum_dagster.synthesis.basic import BasicConfig
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
        "--workers",
        type=int,
        default=None,
        help="worker processes (default: the machine's cores); the output is the same "
        "bytes for any number",
    )
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


def _readable(path: str) -> None:
    """Raise ``SourceError`` as the readers do when ``path`` cannot be opened."""
    try:
        with open(path, "rb"):
            pass
    except FileNotFoundError as exc:
        raise SourceError(path, "file not found") from exc
    except IsADirectoryError as exc:
        raise SourceError(path, "is a directory, expected a file") from exc
    except PermissionError as exc:
        raise SourceError(path, "permission denied") from exc


def _local_copy(src: str) -> str:
    """A local temporary copy of a remote ``src`` (the caller removes it)."""
    import tempfile

    from hum_dagster.store import fsio

    fd, tmp = tempfile.mkstemp(prefix="hum-convert-src-")
    os.close(fd)
    try:
        fs, remote = fsio.filesystem(src)
        fs.get_file(remote, tmp)
    except FileNotFoundError as exc:
        os.remove(tmp)
        raise SourceError(src, "file not found") from exc
    except BaseException:
        os.remove(tmp)
        raise
    return tmp


class _AtomicTarget:
    """Where rows go: a sibling temporary file renamed over ``path`` on success (a
    remote path: a local temporary file uploaded on success); never a partial file."""

    def __init__(self, path: str):
        self.path = path
        self._remote = "://" in path
        if self._remote:
            from hum_dagster.store import fsio

            self._writer = fsio.atomic_writer(path)
            self.handle = self._writer.__enter__()
            self.tmp = None
        else:
            target = Path(path)
            if target.parent and not target.parent.exists():
                target.parent.mkdir(parents=True, exist_ok=True)
            self.tmp = target.with_name(f".{target.name}.tmp-{uuid.uuid4().hex}")
            self.handle = open(self.tmp, "wb")  # noqa: SIM115 (closed in commit/abort)

    def commit(self) -> None:
        if self._remote:
            self._writer.__exit__(None, None, None)
            return
        self.handle.close()
        os.replace(self.tmp, self.path)

    def abort(self) -> None:
        if self._remote:
            self._writer.__exit__(RuntimeError, RuntimeError("aborted"), None)
            return
        self.handle.close()
        if self.tmp.exists():
            self.tmp.unlink()


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from hum_dagster.cli import convert_engine as engine
    from hum_dagster.readers.iepile import IepileSource
    from hum_dagster.readers.validate import Declared

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
    workers = args.workers if args.workers is not None else engine.default_workers()
    if workers < 1:
        return _fail(f"--workers must be at least 1, got {workers}")

    if "://" not in args.tgt_path and os.path.isdir(args.tgt_path):
        return _fail(f"--tgt_path {args.tgt_path} is a directory; give the file to write")
    src = os.path.abspath(args.src_path) if "://" not in args.src_path else args.src_path
    source_name = Path(args.src_path).parent.name or Path(src).parent.name
    options: dict[str, Any] = {}
    if args.schema_path:
        options["schema"] = (
            os.path.abspath(args.schema_path) if "://" not in args.schema_path else args.schema_path
        )
    entry = CatalogEntry(
        name=source_name or "iepile",
        task=read_task,
        language=args.language,
        format="iepile",
        location=src,
        split="test" if args.split == "test" else "train",
        options=options,
    )
    name = os.path.basename(src)

    def where(origin: str) -> str:
        return src + origin[len(name) :] if origin.startswith(name) else origin

    local = None
    target = None
    try:
        templates = load_templates(args.templates)
        hard = _load_hard_negatives(args.hard_negative_path) if args.cluster_mode else None
        source = IepileSource(entry)
        if "://" in src:
            path = local = _local_copy(src)
        else:
            path = src
            _readable(path)
        config = BasicConfig(
            mode=args.split,
            split_num={task: split_num},
            neg_rate=args.neg_schema,
            random_sort=args.random_sort,
            hard_negatives=hard,
            seed=args.seed,
            templates=templates,
            kge_attributes_key="attribute",  # IEPile's converter's spelling (OneKE: attributes)
            rng_factory=engine.line_rng,
        )
        job = engine.Job(
            path=path,
            name=name,
            cli_task=cli_task,
            task=task,
            source=source,
            declared=Declared(source.schema),
            schema=source.schema,
            config=config,
            source_name=source_name,
            language=args.language,
            dedup=args.dedup,
            mining=source.schema is None,
        )
        items = None
        if engine.first_content(path).startswith(b"["):  # a JSON array, not JSON lines
            from hum_dagster.readers.common import iter_json_items

            items = list(iter_json_items(path))
        if job.mining:
            mined = engine.run(job, None, workers, items=items)
            job.schema = source.mined_schema(*mined.mined)
            job.mining = False
        target = _AtomicTarget(args.tgt_path)
        total = engine.run(job, engine.Sink(target.handle), workers, items=items)
        if total.tally.count and not total.records and not total.duplicates:
            first_origin, first_reason = total.tally.first[0]
            target.abort()
            target = None
            return _fail(
                f"no record of {src} reads as an IEPile {read_task} record "
                f"({total.tally.count} skipped, the first {where(first_origin)}: "
                f"{first_reason}); is --task {cli_task} right?"
            )
        target.commit()
        target = None
    except SourceError as exc:
        message = str(exc)
        return _fail(message.replace(local, src) if local else message)
    except (ValueError, engine.ConvertError) as exc:
        return _fail(str(exc))
    except OSError as exc:
        failed = exc.filename or args.tgt_path
        return _fail(f"cannot write {failed}: {exc.strerror or exc}")
    finally:
        if target is not None:
            target.abort()
        if local is not None and os.path.exists(local):
            os.remove(local)
    if total.tally.count:
        print(f"{PROG}: warning: {engine.skipped_summary(total.tally, where)}", file=sys.stderr)
    if args.dedup and total.duplicates:
        print(f"{PROG}: {engine.duplicate_summary(total)}", file=sys.stderr)
    print(
        f"{PROG}: wrote {total.rows} {args.split} rows from {total.records} records "
        f"({total.tally.count} skipped) to {args.tgt_path}",
        file=sys.stderr,
    )
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
