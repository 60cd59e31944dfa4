"""``hum score`` and the ``iepile`` mode agree with IEPile's set-mode rules to the digit.

The rules are stated again here, independently and in plain Python (read from
zjunlp/IEPile ``ie2instruction/eval_func.py`` and ``eval/``; see
``hum_dagster.evaluation.iepile`` for the full statement). Prediction files are built
from real shared data (CrossNER politics test in full, 300 FewRel records, the IEPile
EE sample as EE, EET and EEA) with exact, dropped, spurious, relabelled, case- and
whitespace-changed, duplicated, truncated, prose-wrapped and empty outputs, and scored
by ``hum score`` (its command line) and by the pipeline's scorer.
"""

from __future__ import annotations

import copy
import json

import pytest

from hum_dagster.cli.score import main as score_main
from hum_dagster.evaluation.benchmarks import build_eval_instructions, get_benchmark
from hum_dagster.evaluation.metrics import score_f1
from hum_dagster.synthesis.outputs import build_output, index_gold

# --------------------------------------------------------------------------- IEPile, restated


def _iepile_read(task, obj):
    """Tuples of one parsed output (IEPile's extracters; EET as post_process4 means)."""
    found = []
    for key in obj:
        values = obj[key]
        if type(values) is not list:
            continue
        for item in values:
            if task in ("NER", "EET"):
                if type(item) is str:
                    found.append((item, key))
                continue
            if type(item) is not dict:
                continue
            if task == "RE":
                s = item.get("subject", "")
                o = item.get("object", "")
                if type(s) is str and type(o) is str:
                    found.append((s, key, o))
                continue
            if task == "EE":
                trigger = item.get("trigger", "")
                if type(trigger) is not str:
                    continue
                roles = item.get("arguments", {})
            else:
                trigger, roles = "", item
            args = []
            for role in roles:
                value = roles[role]
                for v in value if type(value) is list else [value]:
                    if v != "NAN":
                        args.append((v, role))
            found.append((key, trigger, tuple(args)))
    return found


def _iepile_gold(task, label):
    out = []
    for it in label:
        if task == "NER":
            out.append((it["entity"], it["entity_type"]))
        elif task == "RE":
            out.append((it.get("head", ""), it.get("relation", ""), it.get("tail", "")))
        elif task == "EET":
            out.append((it["event_trigger"], it["event_type"]))
        else:
            args = tuple((a["argument"], a["role"]) for a in it["arguments"])
            out.append((it["event_type"], it["event_trigger"] if task == "EE" else "", args))
    return out


def independent_set_mode(lines, task):
    """IEPile's figures for ``--match_mode set`` over JSON lines."""
    groups, order = {}, []
    for line in lines:
        d = json.loads(line)
        key = d.get("source", "None") + d["id"]
        if key not in groups:
            groups[key] = [json.loads(d["label"]), []]
            order.append(key)
        groups[key][1].append(d["output"])
    kinds = ["event", "argument"] if task in ("EE", "EEA") else [""]
    tp = dict.fromkeys(kinds, 0)
    ngold = dict.fromkeys(kinds, 0)
    npred = dict.fromkeys(kinds, 0)
    errors = 0
    for key in order:
        label, outputs = groups[key]
        pred = []
        for out in outputs:
            try:
                obj = json.loads(out)
            except json.JSONDecodeError:
                errors += 1
                continue
            if type(obj) is not dict:
                errors += 1
                continue
            pred += _iepile_read(task, obj)
        gold = _iepile_gold(task, label)
        if task in ("EE", "EEA"):
            pairs = {
                "event": ({(t, g) for t, g, _ in gold}, {(t, g) for t, g, _ in pred}),
                "argument": ({(t, a, r) for t, _, args in gold for a, r in args},
                             {(t, a, r) for t, _, args in pred for a, r in args}),
            }
        else:
            pairs = {"": (set(gold), set(pred))}
        for kind, (g, p) in pairs.items():
            tp[kind] += len([x for x in p if x in g])
            ngold[kind] += len(g)
            npred[kind] += len(p)
    result = {"总样本数": len(order), "错误数": errors}
    for kind in kinds:
        prefix = kind + "_" if kind else ""
        p = round(tp[kind] / npred[kind] * 100, 2) if npred[kind] else 0.0
        r = round(tp[kind] / ngold[kind] * 100, 2) if ngold[kind] else 0.0
        result[prefix + "P"], result[prefix + "R"] = p, r
        result[prefix + "F1"] = round(2 * p * r / (p + r), 2) if p + r else 0.0
    return result


# --------------------------------------------------------------------------- predictions


PERTURBATIONS = ("exact", "dropped", "spurious", "relabelled", "case", "whitespace",
                 "duplicated", "truncated", "empty", "prose")


def _first_list(value):
    for key, v in value.items():
        if isinstance(v, list) and v:
            return key, v
    return None, None


def _map_first_string(value, fn):
    """``value`` with its first string leaf (depth first) replaced by ``fn(leaf)``."""
    done = [False]

    def walk(x):
        if done[0]:
            return x
        if isinstance(x, str) and x and x != "NAN":
            done[0] = True
            return fn(x)
        if isinstance(x, list):
            return [walk(y) for y in x]
        if isinstance(x, dict):
            return {k: walk(v) for k, v in x.items()}
        return x

    return walk(value)


def _spurious(task):
    return {"NER": "zzz spurious", "EET": "zzz", "RE": {"subject": "zzz", "object": "yyy"},
            "EE": {"trigger": "zzz", "arguments": {"zzz role": "yyy"}},
            "EEA": {"zzz role": "yyy"}}[task]


def perturb(task, answer, kind, other_label):
    value = copy.deepcopy(answer)
    key, items = _first_list(value)
    if kind == "truncated":
        text = json.dumps(value, ensure_ascii=False)
        return text[: max(1, len(text) // 2)]
    if kind == "empty":
        return ""
    if kind == "prose":
        return "Here is the answer: " + json.dumps(value, ensure_ascii=False)
    if key is not None:
        if kind == "dropped":
            items.pop(0)
        elif kind == "spurious":
            items.append(_spurious(task))
        elif kind == "relabelled":
            value.setdefault(other_label, [])
            if isinstance(value[other_label], list):
                value[other_label].extend(value.pop(key))
        elif kind == "case":
            value = _map_first_string(value, str.upper)
            value = {(k.upper() if k == key else k): v for k, v in value.items()}
        elif kind == "whitespace":
            value = _map_first_string(value, lambda s: f" {s} ")
        elif kind == "duplicated":
            items.append(copy.deepcopy(items[0]))
    elif kind == "spurious":
        value[other_label] = [_spurious(task)]
    return json.dumps(value, ensure_ascii=False)


def iepile_label(task, gold):
    """The IEPile label list of canonical gold, written out here for the test."""
    if task == "NER":
        return [{"entity": e["text"], "entity_type": e["type"]} for e in gold["entities"]]
    if task == "RE":
        return [{"head": r["head"], "relation": r["relation"], "tail": r["tail"]}
                for r in gold["relations"]]
    return [{"event_trigger": e.get("trigger") or "", "event_type": e["event_type"],
             "arguments": [{"argument": a["argument"], "role": a["role"]}
                           for a in e.get("arguments") or ()]} for e in gold["events"]]


def prediction_file(rows, path):
    """IEPile lines for ``rows`` (one per chunk) with a perturbation each (cycled apart
    over chunks with and without gold answers); the outputs by instruction id for the
    pipeline's scorer; the perturbations used."""
    lines, outputs, used = [], {}, []
    seen = {True: 0, False: 0}
    for row in rows:
        task = row["task"]
        gold = json.loads(row["label"])
        instruction = json.loads(row["instruction"])
        items = json.loads(row["schema"])
        answer = build_output(task, index_gold(task, instruction["input"], gold), items)
        labels = [it if isinstance(it, str) else it.get("event_type") for it in items]
        other = next((x for x in labels[1:] if x), "wrong_label")
        positive = any(isinstance(v, list) and v for v in answer.values())
        kind = PERTURBATIONS[seen[positive] % len(PERTURBATIONS)]
        seen[positive] += 1
        used.append(kind)
        output = perturb(task, answer, kind, other)
        outputs[row["instruction_id"]] = output
        lines.append(json.dumps({
            "id": row["record_id"], "source": row["source"], "instruction": row["instruction"],
            "label": json.dumps(iepile_label(task, gold), ensure_ascii=False), "output": output,
        }, ensure_ascii=False))
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return lines, outputs, used


def hum_score(path, task, *extra, capsys):
    capsys.readouterr()
    assert score_main(["--path1", str(path), "--task", task, "--match_mode", "set", "--json", *extra]) == 0
    return json.loads(capsys.readouterr().out)


def _same(ours, independent):
    return {k: ours[k] for k in independent} == independent


# --------------------------------------------------------------------------- the comparison


CASES = [  # benchmark, task, sample size (None: the whole file)
    ("crossner_politics", "NER", None),
    ("fewrel", "RE", 300),
    ("ee_law_standin", "EET", None),
    ("ee_law_standin", "EEA", None),
]


@pytest.mark.parametrize("bench, task, sample", CASES)
def test_hum_score_and_pipeline_match_iepile_set_mode(shared_data, tmp_path, capsys, bench, task, sample):
    rows = [r for r in build_eval_instructions(get_benchmark(bench), "B", sample) if r["task"] == task]
    path = tmp_path / f"{bench}_{task}.json"
    lines, outputs, used = prediction_file(rows, path)
    independent = independent_set_mode(lines, task)
    got = hum_score(path, task, capsys=capsys)["total"]
    assert _same(got, independent), (got, independent)
    # every perturbation occurs, and the errors are exactly the unparsable ones
    assert len(set(used)) == min(len(PERTURBATIONS), len(rows))
    assert independent["错误数"] == sum(k in ("truncated", "empty", "prose") for k in used)
    f1_key = "argument_F1" if task == "EEA" else "F1"
    assert 0 < independent[f1_key] < 100
    # the pipeline's iepile mode gives the same figures on the same outputs
    metric = {"NER": "ner_f1", "RE": "re_f1", "EET": "trigger_f1", "EEA": "argument_f1"}[task]
    pipeline = score_f1(rows, outputs)[metric]["iepile"]
    assert pipeline["F1"] == independent[f1_key]
    assert pipeline["parse_failures"] == independent["错误数"]
    if sample is None:
        assert independent["总样本数"] == len(get_benchmark(bench).read().records)


def test_hum_score_on_iepile_ee_sample_converted_by_hum_convert(shared_data, tmp_path, capsys):
    """EE (events and arguments at once), from ``hum convert --split test`` output."""
    from hum_dagster.cli.convert import main as convert_main

    data = shared_data / "iepile" / "EE"
    converted = tmp_path / "ee.json"
    assert convert_main(["--src_path", str(data / "sample.json"), "--tgt_path", str(converted),
                         "--schema_path", str(data / "schema.json"), "--task", "EE",
                         "--split", "test"]) == 0
    rows = [json.loads(line) for line in converted.read_text(encoding="utf-8").splitlines()]
    lines = []
    for i, row in enumerate(rows):
        label = json.loads(row["label"])
        types = {item["event_type"] for item in json.loads(row["instruction"])["schema"]}
        answer = {}
        for e in label:
            if e["event_type"] in types:
                answer.setdefault(e["event_type"], []).append(
                    {"trigger": e["event_trigger"],
                     "arguments": {a["role"]: a["argument"] for a in e["arguments"]}})
        other = sorted(types)[0]
        row["output"] = perturb("EE", answer, PERTURBATIONS[i % len(PERTURBATIONS)], other)
        lines.append(json.dumps(row, ensure_ascii=False))
    path = tmp_path / "ee_pred.json"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    independent = independent_set_mode(lines, "EE")
    got = hum_score(path, "EE", capsys=capsys)
    assert _same(got["total"], independent)
    assert set(got["total"]) >= {"event_P", "event_R", "event_F1", "argument_P", "argument_R",
                                 "argument_F1", "missing", "parse_failure_rate"}
    assert (path.parent / "output_msg" / path.name).is_file()  # written where IEPile writes it
    by_source = hum_score(path, "EE", "--sort_by", "source", capsys=capsys)
    assert _same(by_source["EE"], independent)


# --------------------------------------------------------------------------- hand cases


def _file(tmp_path, task, records):
    lines = []
    for rid, label, outputs in records:
        for out in outputs:
            line = {"id": rid, "source": "s", "instruction": json.dumps({"input": "x", "schema": []}),
                    "label": json.dumps(label, ensure_ascii=False)}
            if out is not None:
                line["output"] = out
            lines.append(json.dumps(line, ensure_ascii=False))
    path = tmp_path / "p.json"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_modes_disagree_where_they_say(tmp_path, capsys):
    label = [{"entity": "Ann", "entity_type": "person"}, {"entity": "None", "entity_type": "band"}]
    path = _file(tmp_path, "NER", [
        ("r1", label, ['{"Person": ["Ann"], "band": ["None"]}']),
        ("r2", label, ['Answer: {"person": [" Ann "]}']),
        ("r3", label, [""]),
        ("r4", label, [None]),  # no output at all: missing
    ])
    iep = hum_score(path, "NER", capsys=capsys)["total"]
    strict = hum_score(path, "NER", "--mode", "strict", capsys=capsys)["total"]
    lenient = hum_score(path, "NER", "--mode", "lenient", capsys=capsys)["total"]
    # iepile: r1 read (band None matches, Person is not person), r2 prose and r3 empty fail
    assert (iep["错误数"], iep["P"], iep["R"]) == (2, 50.0, 12.5)
    assert iep["missing"] == 1 and iep["parse_failure_rate"] == round(2 / 3, 4)
    # strict reads r2's JSON inside prose but " Ann " is not Ann; r3 fails
    assert (strict["错误数"], strict["P"], strict["R"]) == (1, round(100 / 3, 2), 12.5)
    # lenient folds case and white space: Ann matches in r1 and r2
    assert (lenient["错误数"], lenient["P"], lenient["R"]) == (1, 100.0, 37.5)


def test_normal_mode_counts_repeats(tmp_path, capsys):
    label = [{"entity": "Ann", "entity_type": "person"}]
    path = _file(tmp_path, "NER", [("r1", label, ['{"person": ["Ann", "Ann"]}', '{"person": ["Ann"]}'])])
    capsys.readouterr()
    assert score_main(["--path1", str(path), "--task", "NER", "--json"]) == 0  # IEPile's default: normal
    normal = json.loads(capsys.readouterr().out)["total"]
    assert (normal["P"], normal["R"], normal["F1"]) == (33.33, 100.0, 50.0)
    assert hum_score(path, "NER", capsys=capsys)["total"]["P"] == 100.0  # set mode


def test_f1_is_computed_from_the_rounded_p_and_r_as_iepile_does(tmp_path, capsys):
    label = [{"entity": f"e{i}", "entity_type": "t"} for i in range(6)]
    path = _file(tmp_path, "NER", [("r1", label, ['{"t": ["e0"]}'])])
    got = hum_score(path, "NER", capsys=capsys)["total"]
    # P 100.0, R 16.67: IEPile's F1 is 28.58 (from the rounded R); the exact F1 is 28.57
    assert (got["P"], got["R"], got["F1"]) == (100.0, 16.67, 28.58)


def test_hum_score_errors_are_one_line(tmp_path, capsys):
    capsys.readouterr()
    assert score_main(["--path1", str(tmp_path / "nope.json"), "--task", "NER"]) == 2
    assert score_main(["--path1", str(tmp_path / "nope.json"), "--task", "SPO"]) == 2
    (tmp_path / "bad.json").write_text('{"id": "1"}\n', encoding="utf-8")
    assert score_main(["--path1", str(tmp_path / "bad.json"), "--task", "NER"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 3 and all(line.startswith("hum score: error:") for line in err)
    assert "label" in err[2]
