"""``hum score``: IEPile's ``eval_func.py`` interface on our scorer.

    hum score --path1 data/NER/processed.json --task NER --match_mode set [--sort_by source]

Reads IEPile's prediction files (JSON lines with ``id``, ``source``, ``instruction``,
``output`` and ``label``), prints the figures IEPile prints (a Python dict:
``{'total': {'总样本数', '错误数', 'P', 'R', 'F1'}, <category>: {...}}``; events give
``event_P`` ... ``argument_F1``) and writes them as JSON to
``<folder of --path1>/output_msg/<file name>``, as IEPile does. Each figure set also
has ``parse_failure_rate`` (errors / outputs) and ``missing`` (lines without an
``output``).

Flags: IEPile's (``--path1 --task --language --NAN --prefix --sort_by --match_mode
--metrics_list``; ``--match_mode`` defaults to ``normal`` as in IEPile; ``--language``,
``--NAN`` and ``--prefix`` are accepted and, as in IEPile, unused), plus ``--mode``
(``iepile``, the default: IEPile's rules, see ``hum_dagster.evaluation.iepile``;
``strict`` or ``lenient``: ours, see ``hum_dagster.evaluation.metrics``; ours always
count sets) and ``--json`` (print the figures as one JSON object instead).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any

from hum_dagster.evaluation import iepile
from hum_dagster.evaluation.metrics import MODES, score_f1

PROG = "hum score"
IEPILE_TASK_CHOICES = ("NER", "RE", "EE", "SPO", "EET", "EEA", "KG", "MRC")


def configure(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    parser.add_argument("--path1", default="", help="IEPile prediction file (JSON lines)")
    parser.add_argument("--task", default="re", choices=IEPILE_TASK_CHOICES)
    parser.add_argument("--language", default="zh", choices=["zh", "en"], help="unused, as in IEPile")
    parser.add_argument("--NAN", default="", help="unused, as in IEPile (its extracters use NAN)")
    parser.add_argument("--prefix", default="", help="unused, as in IEPile")
    parser.add_argument("--sort_by", default="", help="also give figures per value of this "
                        "field (source or input)")
    parser.add_argument("--match_mode", default="normal", choices=iepile.MATCH_MODES,
                        help="set: a tuple counts once per record; normal (IEPile's default): "
                        "repeats count (iepile mode only)")
    parser.add_argument("--metrics_list", default="f1", help="f1 (rouge is not supported)")
    parser.add_argument("--mode", default="iepile", choices=MODES,
                        help="iepile: IEPile's rules exactly; strict / lenient: ours")
    parser.add_argument("--json", action="store_true", help="print the figures as one JSON object")
    return parser


def add_parser(subparsers) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "score",
        help="score IEPile prediction files (eval_func.py's flags)",
        description="Score IEPile-format predictions: IEPile's eval_func.py rules (--mode "
        "iepile) or ours (strict, lenient).",
    )
    configure(parser)
    parser.set_defaults(func=cmd_score)
    return parser


def _fail(message: str) -> int:
    print(f"{PROG}: error: {message}", file=sys.stderr)
    return 2


def read_file(path: str) -> list[iepile.Group]:
    """Groups of a prediction file; a line without ``output`` is kept as missing."""
    with open(path, encoding="utf-8") as handle:
        return iepile.read_groups(handle, path, allow_missing=True)


def _extra(result: dict[str, Any], groups: list[iepile.Group]) -> dict[str, Any]:
    missing = sum(g.missing for g in groups)
    asked = sum(len(g.outputs) for g in groups) - missing
    result["missing"] = missing
    result["parse_failure_rate"] = round(result[iepile.ERRORS_KEY] / asked, 4) if asked else 0.0
    return result


def _categories(groups: list[iepile.Group], sort_by: str) -> dict[str, list[iepile.Group]]:
    cats: dict[str, list[iepile.Group]] = {}
    if sort_by:
        for g in groups:
            cats.setdefault(str(g.get(sort_by)), []).append(g)
    return dict(sorted(cats.items()))


def score_iepile(groups: list[iepile.Group], task: str, match_mode: str, sort_by: str) -> dict[str, Any]:
    """IEPile's figures, plus ``missing`` and ``parse_failure_rate``."""
    result = iepile.evaluate_groups(groups, task, match_mode, sort_by)
    _extra(result["total"], groups)
    for cat, members in _categories(groups, sort_by).items():
        _extra(result[cat], members)
    return result


def _canonical_gold(task: str, label: list[dict[str, Any]]) -> dict[str, Any]:
    if task == "NER":
        return {"entities": [{"text": e["entity"], "type": e["entity_type"]} for e in label]}
    if task == "RE":
        return {"relations": [{"head": r.get("head", ""), "relation": r.get("relation", ""),
                               "tail": r.get("tail", "")} for r in label]}
    return {"events": [{"event_type": e["event_type"], "trigger": e.get("event_trigger", ""),
                        "arguments": [{"role": a["role"], "argument": a["argument"]}
                                      for a in e.get("arguments") or ()]} for e in label]}


def _schema(instruction: Any) -> str:
    try:
        return json.dumps(json.loads(instruction).get("schema") or [], ensure_ascii=False)
    except (TypeError, ValueError, AttributeError):
        return "[]"


def _ours(groups: list[iepile.Group], task: str, mode: str) -> dict[str, Any]:
    rows, outputs = [], {}
    for g in groups:
        gold = json.dumps(_canonical_gold(task, g.label), ensure_ascii=False)
        for i, (output, instruction) in enumerate(zip(g.outputs, g.instructions, strict=True)):
            iid = f"{g.key}#{i}"
            rows.append({"instruction_id": iid, "task": task, "source": g.source,
                         "record_id": g.key, "schema": _schema(instruction), "label": gold})
            if output is not iepile.MISSING_OUTPUT:
                outputs[iid] = output if isinstance(output, str) else ""
    result: dict[str, Any] = {iepile.RECORDS_KEY: len(groups), iepile.ERRORS_KEY: 0}
    prefixes = {"ner_f1": "", "re_f1": "", "trigger_f1": "event_" if task == "EE" else "",
                "argument_f1": "argument_"}
    scores = score_f1(rows, outputs)
    for metric in ("ner_f1", "re_f1", "trigger_f1", "argument_f1"):
        if metric not in scores:
            continue
        value = scores[metric]
        figures = value[mode]
        prefix = prefixes[metric]
        result[iepile.ERRORS_KEY] = figures["parse_failures"]
        result.update({f"{prefix}P": round(figures["P"], 2), f"{prefix}R": round(figures["R"], 2),
                       f"{prefix}F1": round(figures["F1"], 2)})
    return _extra(result, groups)


def score_ours(groups: list[iepile.Group], task: str, mode: str, sort_by: str) -> dict[str, Any]:
    """Our ``strict`` or ``lenient`` figures under IEPile's keys (sets always)."""
    result = {"total": _ours(groups, task, mode)}
    for cat, members in _categories(groups, sort_by).items():
        result[cat] = _ours(members, task, mode)
    return result


def cmd_score(args: argparse.Namespace) -> int:
    if args.task not in iepile.IEPILE_TASKS:
        return _fail(f"IEPile has no scorer for --task {args.task} (it scores NER, RE, EE, EET, EEA)")
    if {m.strip() for m in args.metrics_list.split(",")} - {"f1"}:
        return _fail("only --metrics_list f1 is supported (IEPile's rouge path cannot run)")
    if args.sort_by and args.sort_by not in ("source", "input"):
        return _fail(f"--sort_by must be source or input, got {args.sort_by!r}")
    if not args.path1 or not os.path.isfile(args.path1):
        return _fail(f"--path1 {args.path1!r} is not a file")
    try:
        groups = read_file(args.path1)
        if args.mode == "iepile":
            result = score_iepile(groups, args.task, args.match_mode, args.sort_by)
        else:
            result = score_ours(groups, args.task, args.mode, args.sort_by)
    except (iepile.IEPileInputError, ValueError, KeyError) as exc:
        return _fail(f"{args.path1}: {exc}")
    out_dir = os.path.join(os.path.dirname(args.path1), "output_msg")
    os.makedirs(out_dir, exist_ok=True)
    with open(os.path.join(out_dir, os.path.basename(args.path1)), "w", encoding="utf-8") as handle:
        json.dump(result, handle, ensure_ascii=False, indent=4)
    print(json.dumps(result, ensure_ascii=False) if args.json else result)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = configure(argparse.ArgumentParser(prog=PROG, description=__doc__.split("\n\n")[0]))
    return cmd_score(parser.parse_args(argv))


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
