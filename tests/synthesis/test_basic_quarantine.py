"""Basic synthesis never fails a source for one record: what it cannot use is quarantined
through ``SynthesisReport``, with the record's origin and the reason."""

from __future__ import annotations

import pytest

from hum_dagster.records import LabelSchema, Record
from hum_dagster.synthesis.basic import (
    PARSE_CHECK,
    SPAN_CHECK,
    BasicConfig,
    SchemaError,
    SynthesisReport,
    TaskError,
    check_basic_row,
    synthesize_basic,
)


def ig(origin: str, *turns: tuple[str, str]) -> Record:
    conversation = [{"role": role, "content": content} for role, content in turns]
    return Record(source="chat", task="IG", language="zh", text="q", origin=origin,
                  gold={"conversation": conversation})  # fmt: skip


def ner(origin: str, text: str, *entities: tuple[str, str]) -> Record:
    gold = {"entities": [{"text": m, "type": t, "start": text.find(m)} for m, t in entities]}
    return Record(source="ner", task="NER", language="en", text=text, gold=gold, origin=origin)


def test_a_bad_conversation_is_quarantined_and_the_good_ones_kept():
    good = [ig(f"chat.jsonl:{i}", ("user", "q"), ("assistant", f"a{i}")) for i in range(1, 9)]
    bad = ig("chat.jsonl:9", ("user", "q"), ("user", "q"))  # two user turns in a row
    report = SynthesisReport()
    rows = list(synthesize_basic([*good[:4], bad, *good[4:]], LabelSchema(), BasicConfig(),
                                 report=report))  # fmt: skip
    assert len(rows) == 8
    assert report.records == 9
    [skipped] = report.quarantined
    assert skipped.origin == "chat.jsonl:9" and skipped.source == "chat"
    assert "user turn followed by an assistant turn" in skipped.reason
    assert '"conversation"' in skipped.raw
    # Without a report the same record raises, naming its origin.
    with pytest.raises(ValueError, match="chat.jsonl:9"):
        list(synthesize_basic([bad], LabelSchema(), BasicConfig()))


def test_validate_keeps_rows_that_break_a_check_out():
    schema = LabelSchema(types=["LOC", "PER"])
    good = ner("n.txt:1", "Anna lives in Paris", ("Anna", "PER"), ("Paris", "LOC"))
    # An entity that is not in the text (what no reader lets through any more).
    bad = Record(source="ner", task="NER", language="en", text="Anna lives in Paris",
                 gold={"entities": [{"text": "Rome", "type": "LOC", "start": None}]},
                 origin="n.txt:2")  # fmt: skip
    report = SynthesisReport()
    rows = list(synthesize_basic([good, bad], schema, BasicConfig(), report=report, validate=True))
    assert {r["record_id"] for r in rows} == {good.record_id}
    assert [q.origin for q in report.quarantined] == ["n.txt:2"]
    assert report.quarantined[0].reason.startswith(f"instruction fails {SPAN_CHECK}: entity 'Rome'")
    assert {p.check for p in report.problems} == {SPAN_CHECK}
    # Without validate the row is made (and the check function reports it by name).
    rows = list(synthesize_basic([bad], schema, BasicConfig()))
    assert [p.check for row in rows for p in check_basic_row(row)] == [SPAN_CHECK]


def test_check_basic_row_routes_by_check_name():
    [row] = list(synthesize_basic([ner("n.txt:1", "Anna", ("Anna", "PER"))],
                                  LabelSchema(types=["PER"]), BasicConfig()))  # fmt: skip
    assert check_basic_row(row) == []
    broken = dict(row, output='{"PER": ["Anna"], "ORG": []}')
    assert [(p.check, p.record) for p in check_basic_row(broken)] == [
        (PARSE_CHECK, row["instruction_id"])
    ]


def test_source_level_errors_still_raise():
    record = ner("n.txt:1", "Anna", ("Anna", "PER"))
    with pytest.raises(SchemaError, match="needs a label schema"):
        list(synthesize_basic([record], LabelSchema(), BasicConfig(), report=SynthesisReport()))
    with pytest.raises(TaskError, match="cannot be made"):
        list(synthesize_basic([record], LabelSchema(types=["PER"]), BasicConfig(), tasks=["RE"],
                              report=SynthesisReport()))  # fmt: skip


def test_rows_of_a_record_come_out_together_or_not_at_all():
    # An EE record whose second derived task fails: none of its rows may be written.
    schema = LabelSchema(types=["婚礼"], roles=["地点"], type_roles={"婚礼": ["地点"]})
    good = Record(source="ee", task="EE", language="zh", text="在大理举办婚礼", origin="e:1",
                  gold={"events": [{"event_type": "婚礼", "trigger": "婚礼",
                                    "arguments": [{"role": "地点", "argument": "大理"}]}]})
    bad = Record(source="ee", task="EE", language="zh", text="举办婚礼", origin="e:2",
                 gold={"events": [{"event_type": "婚礼", "trigger": "婚礼",
                                   "arguments": [{"argument": "大理"}]}]})  # no role
    report = SynthesisReport()
    rows = list(synthesize_basic([good, bad], schema, BasicConfig(), report=report))
    assert {r["record_id"] for r in rows} == {good.record_id}
    assert {r["task"] for r in rows} == {"EE", "EET", "EEA"}
    assert [q.origin for q in report.quarantined] == ["e:2"]
    assert report.quarantined[0].reason == "cannot build instructions: missing key 'role'"
