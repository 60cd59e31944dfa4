"""Readers: the shipped samples, each format's decoding, and bad input of every kind."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest

from hum_dagster.readers import READERS, read_source
from hum_dagster.readers.catalog import CatalogEntry, load_catalog
from hum_dagster.readers.conll import TagError, decode_bio, decode_bioes
from hum_dagster.readers.fewrel import load_pid2name
from hum_dagster.readers.iepile import read_iepile, read_iepile_schema
from hum_dagster.records import GOLD_SHAPES, LabelSchema, SourceError

# ---------------------------------------------------------------------------- helpers


def make_entry(
    tmp_path: Path,
    fmt: str,
    task: str,
    content: str | bytes,
    *,
    filename: str = "data.txt",
    language: str = "en",
    options: dict | None = None,
    name: str = "src",
    split: str = "train",
) -> CatalogEntry:
    path = tmp_path / filename
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf-8")
    return CatalogEntry(
        name=name,
        task=task,
        language=language,
        format=fmt,
        location=filename,
        options=options or {},
        catalog_path=str(tmp_path / "catalog.yaml"),
        split=split,
    )


def jsonl(*rows) -> str:
    return "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows)


def reasons(result) -> list[str]:
    return [q.reason for q in result.quarantine]


def check_gold(record) -> None:
    """The gold structure matches GOLD_SHAPES for the record's task."""
    gold, task = record.gold, record.task
    if task == "NER":
        assert set(gold) == {"entities"}
        for ent in gold["entities"]:
            assert set(ent) == {"text", "type", "start"}
            assert record.text[ent["start"] : ent["start"] + len(ent["text"])] == ent["text"]
    elif task in ("RE", "SPO"):
        keys = {"head", "relation", "tail"} | (
            {"head_type", "tail_type"} if task == "SPO" else set()
        )
        assert set(gold) == {"relations"}
        assert all(set(rel) == keys for rel in gold["relations"])
    elif task == "KGE":
        assert set(gold) == {"entity_type", "relations"} and gold["entity_type"]
    elif task == "EE":
        for ev in gold["events"]:
            assert set(ev) == {"event_type", "trigger", "arguments"}
            assert ev["trigger"] in record.text
            for arg in ev["arguments"]:
                assert set(arg) == {"role", "argument"} and arg["argument"] in record.text
    elif task == "MRC":
        assert set(gold) == {"question", "options", "answers"}
        assert all(a in (gold["options"] or record.text) for a in gold["answers"])
    elif task == "TC":
        assert set(gold) == {"label"} and gold["label"]
    elif task == "OpenIE":
        for triple in gold["triples"]:
            assert set(triple) == {"subject", "predicate", "object", "extra"}
    elif task == "IG":
        conv = gold["conversation"]
        assert conv[-1]["role"] == "assistant"
        assert record.text == [t for t in conv if t["role"] == "user"][-1]["content"]
    else:  # pragma: no cover
        raise AssertionError(task)


# ---------------------------------------------------------------------------- samples

EXPECTED_COUNTS = {
    "ner_en_conll": 11,
    "ner_zh_bioes": 9,
    "ner_zh_iepile": 10,
    "re_zh_iepile": 8,
    "spo_zh_iepile": 8,
    "ee_zh_iepile": 9,
    "kge_zh_iepile": 8,
    "re_en_fewrel": 15,
    "mrc_zh_c3": 9,
    "mrc_en_squad": 9,
    "tc_en_csv": 10,
    "tc_zh_jsonl": 10,
    "openie_en_carb": 6,
    "ig_en_alpaca": 8,
    "ig_zh_sharegpt": 8,
}


@pytest.fixture(scope="module")
def samples(assets_dir):
    entries = load_catalog(assets_dir / "catalog.yaml")
    return {e.name: (e, read_source(e)) for e in entries}


def sample(samples, name):
    return samples[name][1]


def test_catalog_lists_every_sample_and_format(samples, assets_dir):
    assert set(samples) == set(EXPECTED_COUNTS)
    formats = {entry.format for entry, _ in samples.values()}
    assert formats == set(READERS)  # every registered format has a shipped sample
    tasks = {entry.task for entry, _ in samples.values()}
    assert tasks == set(GOLD_SHAPES)
    shipped = {p.name for p in (assets_dir / "samples").iterdir()}
    used = set()
    for _entry, result in samples.values():
        used.update(Path(f).name for f in result.files)
    assert shipped == used  # no stray sample file, none missing


@pytest.mark.parametrize("name", sorted(EXPECTED_COUNTS))
def test_sample_reads_cleanly(samples, name):
    entry, result = samples[name]
    assert result.quarantine == []
    assert len(result.records) == EXPECTED_COUNTS[name]
    file_name = Path(entry.resolve()).name
    ids = set()
    for record in result.records:
        assert (record.source, record.task, record.language, record.split) == (
            entry.name,
            entry.task,
            entry.language,
            entry.split,
        )
        assert re.fullmatch(re.escape(file_name) + r"(:[1-9]\d*|#\S+)", record.origin)
        check_gold(record)
        ids.add(record.record_id)
    assert len(ids) == len(result.records)


def test_conll_en_sample_gold(samples):
    result = sample(samples, "ner_en_conll")
    first = result.records[0]
    assert first.origin == "ner_en.conll:3"  # after -DOCSTART- and the blank line
    assert first.text == (
        "Maria Okafor joined the board of Riverside Hospital in Leeds last spring ."
    )
    assert first.gold == {
        "entities": [
            {"text": "Maria Okafor", "type": "person", "start": 0},
            {"text": "Riverside Hospital", "type": "organisation", "start": 33},
            {"text": "Leeds", "type": "location", "start": 55},
        ]
    }
    # A sentence without entities is still a record.
    assert any(r.gold == {"entities": []} for r in result.records)
    # The labels option fixes the schema and its order.
    assert result.schema.types == ["person", "organisation", "location", "misc"]


def test_conll_zh_bioes_sample_gold(samples):
    result = sample(samples, "ner_zh_bioes")
    first = result.records[0]
    assert first.text == "张伟在杭州创办了青禾科技。"
    assert first.gold["entities"] == [
        {"text": "张伟", "type": "人物", "start": 0},
        {"text": "杭州", "type": "地点", "start": 3},
        {"text": "青禾科技", "type": "组织机构", "start": 8},
    ]
    single = next(r for r in result.records if r.text.startswith("王老师"))
    assert single.gold["entities"][0] == {"text": "王", "type": "人物", "start": 0}
    # The last sentence has no trailing blank line and is still read.
    assert result.records[-1].text == "长江上的轮渡恢复了运营。"
    assert result.schema.types == ["人物", "地点", "组织机构"]


def test_iepile_samples_gold(samples):
    ner = sample(samples, "ner_zh_iepile")
    suzhou = next(r for r in ner.records if r.text.startswith("苏州评弹团"))
    # The repeated (周敏, 人物) is de-duplicated, first occurrence wins, order kept.
    assert suzhou.gold["entities"] == [
        {"text": "苏州评弹团", "type": "组织机构", "start": 0},
        {"text": "周敏", "type": "人物", "start": 8},
        {"text": "苏州", "type": "地理位置", "start": 0},
    ]
    assert ner.schema == LabelSchema(types=["人物", "地理位置", "组织机构"])

    rel = sample(samples, "re_zh_iepile")
    xu = next(r for r in rel.records if r.text.startswith("许明远"))
    assert [x["relation"] for x in xu.gold["relations"]] == ["出生日期", "出生地", "毕业院校"]
    assert rel.schema.types == [] and "作者" in rel.schema.roles

    spo = sample(samples, "spo_zh_iepile")
    assert spo.records[0].gold == {
        "relations": [
            {
                "head": "长河落日",
                "head_type": "图书作品",
                "relation": "作者",
                "tail": "白露",
                "tail_type": "人物",
            }
        ]
    }

    ee = sample(samples, "ee_zh_iepile")
    flood = next(r for r in ee.records if "洪灾" in r.text)
    assert flood.gold == {
        "events": [{"event_type": "灾害/意外-洪灾", "trigger": "洪灾", "arguments": []}]
    }
    assert any(r.gold == {"events": []} for r in ee.records)  # no event is still a record
    match = next(r for r in ee.records if r.text.startswith("经过三局苦战"))
    assert [e["event_type"] for e in match.gold["events"]] == ["竞赛行为-胜负", "竞赛行为-晋级"]
    assert ee.schema.type_roles["竞赛行为-胜负"] == ["胜者", "败者"]

    kge = sample(samples, "kge_zh_iepile")
    assert {r.gold["entity_type"] for r in kge.records} == {"人物"}
    assert kge.records[0].gold["relations"][0] == {
        "head": "宋知远",
        "relation": "出生日期",
        "tail": "1962年5月",
    }
    assert kge.schema.type_roles["人物"][0] == "别名"


def test_fewrel_sample_gold(samples):
    result = sample(samples, "re_en_fewrel")
    first = result.records[0]
    assert first.origin == "fewrel_en.json#P26/0"
    assert first.text.startswith("Clara Webb married the painter Jonah Hale")
    # Surface tokens, not FewRel's lower-cased names; relation names from pid2name.
    assert first.gold == {
        "relations": [{"head": "Clara Webb", "relation": "spouse", "tail": "Jonah Hale"}]
    }
    assert result.schema.roles == [
        "author",
        "located in the administrative territorial entity",
        "sport",
        "spouse",
    ]
    names = load_pid2name(str(Path(result.files[1])))
    assert names["P50"] == ("author", "main creator(s) of a written work")


def test_mrc_samples_gold(samples):
    c3 = sample(samples, "mrc_zh_c3")
    first = c3.records[0]
    assert first.text.split("\n")[1] == "女：好的，会议室也换了吗？"
    assert first.gold == {
        "question": "会议改到了什么时候？",
        "options": ["明天上午", "明天下午三点", "今天下午", "后天上午"],
        "answers": ["明天下午三点"],
    }
    assert first.origin == "c3_zh.json#0.0"
    assert c3.records[1].origin == "c3_zh.json#0.1"

    squad = sample(samples, "mrc_en_squad")
    by_origin = {r.origin: r for r in squad.records}
    assert by_origin["squad_en.json#tm-1"].gold["answers"] == ["the rise and fall of the tide"]
    assert by_origin["squad_en.json#tm-2"].gold["answers"] == [
        "as the tide falls",
        "the tide falls",
    ]
    assert by_origin["squad_en.json#tm-4"].gold == {
        "question": "Who invented the first tide mill?",
        "options": [],
        "answers": [],
    }


def test_classification_samples_gold(samples):
    csv_result = sample(samples, "tc_en_csv")
    multi = csv_result.records[2]
    assert multi.origin == "tc_en.csv:4"
    assert multi.text.endswith("\nThe second act, in particular, is a small masterpiece of pacing.")
    assert multi.gold == {"label": "positive"}
    # The record after the two-line field starts on line 6.
    assert csv_result.records[3].origin == "tc_en.csv:6"
    assert csv_result.records[3].text.startswith('Two hours of "dramatic" pauses')

    zh = sample(samples, "tc_zh_jsonl")
    assert zh.records[0].gold == {"label": "正面"}
    assert zh.schema.types == ["正面", "负面", "中性"]


def test_openie_sample_gold(samples):
    result = sample(samples, "openie_en_carb")
    committee = result.records[0]
    assert committee.origin == "openie_en.tsv:1"
    # The third row for this sentence comes later in the file and still joins it.
    assert committee.gold["triples"] == [
        {
            "subject": "The committee",
            "predicate": "released",
            "object": "its report",
            "extra": ["on Monday"],
        },
        {
            "subject": "The committee",
            "predicate": "led by",
            "object": "Judge Ellen Marsh",
            "extra": [],
        },
        {"subject": "Ellen Marsh", "predicate": "is", "object": "Judge", "extra": []},
    ]
    gift = next(r for r in result.records if r.text.startswith("Maya"))
    assert gift.gold["triples"][0]["extra"] == ["her brother", "for his birthday"]


def test_instruct_samples_gold(samples):
    alpaca = sample(samples, "ig_en_alpaca")
    first = alpaca.records[0]
    assert first.origin == "ig_alpaca_en.json#0"
    assert (
        first.text
        == "Rewrite the sentence in the passive voice.\nThe gardener planted three oak trees."
    )
    assert first.gold["conversation"][-1] == {
        "role": "assistant",
        "content": "Three oak trees were planted by the gardener.",
    }
    assert alpaca.records[1].text == "Give two tips for keeping houseplants healthy."
    translator = alpaca.records[4]
    assert translator.gold["conversation"][0] == {
        "role": "system",
        "content": "You are a careful translator.",
    }
    with_history = alpaca.records[5]
    assert [t["role"] for t in with_history.gold["conversation"]] == [
        "user",
        "assistant",
        "user",
        "assistant",
    ]
    assert with_history.gold["conversation"][0]["content"] == "Translate 'thank you' into Spanish."

    share = sample(samples, "ig_zh_sharegpt")
    multi_turn = share.records[1]
    assert [t["role"] for t in multi_turn.gold["conversation"]] == [
        "system",
        "user",
        "assistant",
        "user",
        "assistant",
    ]
    assert multi_turn.text == "那1是质数吗？"
    messages = share.records[3]  # "messages" with role/content
    assert messages.text == "推荐三种适合初学者养的植物。"
    top_system = share.records[5]
    assert top_system.gold["conversation"][0] == {
        "role": "system",
        "content": "请用简洁的语言回答。",
    }


# ---------------------------------------------------------------------------- tag decoding


def test_decode_bio_iob2_and_iob1():
    assert decode_bio(["B-PER", "I-PER", "O", "B-LOC", "B-LOC", "I-LOC"]) == [
        (0, 2, "PER"),
        (3, 4, "LOC"),
        (4, 6, "LOC"),
    ]
    # IOB1: spans start with I-; B- only separates adjacent spans of one type.
    assert decode_bio(["I-PER", "I-PER", "O", "I-LOC", "B-LOC", "I-ORG"]) == [
        (0, 2, "PER"),
        (3, 4, "LOC"),
        (4, 5, "LOC"),
        (5, 6, "ORG"),
    ]
    assert decode_bio(["O", "O"]) == []
    with pytest.raises(TagError, match="unknown tag prefix"):
        decode_bio(["B-PER", "E-PER"])
    with pytest.raises(TagError, match="malformed tag"):
        decode_bio(["PERSON"])


def test_decode_bioes_strict():
    assert decode_bioes(["B-PER", "I-PER", "E-PER", "O", "S-LOC", "B-ORG", "E-ORG"]) == [
        (0, 3, "PER"),
        (4, 5, "LOC"),
        (5, 7, "ORG"),
    ]
    # BMES spelling.
    assert decode_bioes(["B-PER", "M-PER", "E-PER", "S-LOC"]) == [(0, 3, "PER"), (3, 4, "LOC")]
    bad = {
        ("E-PER",): 0,  # E- without B-
        ("B-PER", "I-LOC", "E-LOC"): 1,  # I-X after B-Y
        ("B-PER", "O"): 1,  # span left open before O
        ("B-PER", "I-PER"): 1,  # never closed
        ("S-PER", "X-PER"): 1,  # unknown prefix
        ("B-PER", "S-LOC"): 1,  # S inside an open span
    }
    for tags, index in bad.items():
        with pytest.raises(TagError) as info:
            decode_bioes(list(tags))
        assert info.value.index == index, tags


def test_conll_auto_scheme_and_whitespace_columns(tmp_path):
    # Four whitespace-separated columns (CoNLL-2003), tag last; S- makes auto pick BIOES.
    content = (
        "-DOCSTART- -X- -X- O\n\n"
        "EU NNP B-NP S-ORG\nrejects VBZ B-VP O\nGerman JJ B-NP S-MISC\ncall NN I-NP O\n\n"
        "Peter NNP B-NP B-PER\nBlackburn NNP I-NP E-PER\n"
    )
    result = read_source(make_entry(tmp_path, "conll", "NER", content))
    assert [r.text for r in result.records] == ["EU rejects German call", "Peter Blackburn"]
    assert result.records[0].gold["entities"] == [
        {"text": "EU", "type": "ORG", "start": 0},
        {"text": "German", "type": "MISC", "start": 11},
    ]
    assert result.records[1].origin == "data.txt:8"
    assert result.schema.types == ["MISC", "ORG", "PER"]


def test_conll_iob1_file_reads_under_auto(tmp_path):
    content = "Peter\tI-PER\nmet\tO\nAnna\tI-PER\nSmith\tI-PER\n\n"
    result = read_source(make_entry(tmp_path, "conll", "NER", content))
    assert result.records[0].gold["entities"] == [
        {"text": "Peter", "type": "PER", "start": 0},
        {"text": "Anna Smith", "type": "PER", "start": 10},
    ]


def test_conll_inconsistent_tags_quarantine_the_sentence_with_line(tmp_path):
    content = (
        "Good\tO\nday\tO\n\n"
        "Anna\tB-PER\nlives\tI-LOC\nhere\tE-LOC\n\n"  # lines 4-6, I-LOC after B-PER
        "Bye\tS-MISC\n"
    )
    result = read_source(make_entry(tmp_path, "conll", "NER", content, options={"scheme": "BIOES"}))
    assert [r.text for r in result.records] == ["Good day", "Bye"]
    assert len(result.quarantine) == 1
    q = result.quarantine[0]
    assert q.origin == "data.txt:4"
    assert "line 5" in q.reason and "I-LOC" in q.reason
    assert "Anna\tB-PER" in q.raw


def test_conll_bio_scheme_rejects_bioes_prefix(tmp_path):
    content = "Anna\tB-PER\nSmith\tE-PER\n\nOk\tB-PER\n"
    result = read_source(make_entry(tmp_path, "conll", "NER", content, options={"scheme": "BIO"}))
    assert len(result.records) == 1
    assert "line 2" in result.quarantine[0].reason
    assert "unknown tag prefix" in result.quarantine[0].reason


def test_conll_column_count_and_labels_option(tmp_path):
    content = "Anna\tB-PER\n\nlonely-token\n\nParis\tB-LOC\n\nOk\tO\n"
    entry = make_entry(tmp_path, "conll", "NER", content, options={"labels": ["PER"]})
    result = read_source(entry)
    assert [r.text for r in result.records] == ["Anna", "Ok"]
    assert reasons(result) == [
        "line 3: expected a token and a tag, got only 'lonely-token'",
        "unknown label 'LOC'",
    ]
    assert [q.origin for q in result.quarantine] == ["data.txt:3", "data.txt:5"]
    assert result.schema.types == ["PER"]


def test_conll_bad_scheme_option_is_a_source_error(tmp_path):
    entry = make_entry(tmp_path, "conll", "NER", "a\tO\n", options={"scheme": "IOBX"})
    with pytest.raises(SourceError, match="option 'scheme'"):
        read_source(entry)


def test_conll_crlf_and_bom(tmp_path):
    content = "\ufeffAnna\r\tB-PER\r\n".replace("\r\t", "\t") + "Lee\tI-PER\r\n\r\n"
    result = read_source(make_entry(tmp_path, "conll", "NER", content))
    assert result.records[0].text == "Anna Lee"
    assert result.records[0].gold["entities"][0] == {"text": "Anna Lee", "type": "PER", "start": 0}


# ---------------------------------------------------------------------------- IEPile


def test_iepile_malformed_json_line_is_quarantined_with_file_and_line(tmp_path):
    content = (
        jsonl({"text": "张三在北京。", "entity": [{"entity": "张三", "entity_type": "人物"}]})
        + '{"text": "坏行", "entity": [\n'
        + "\n"
        + jsonl({"text": "李四去了上海。", "entity": [{"entity": "上海", "entity_type": "地点"}]})
    )
    result = read_iepile(
        make_entry(tmp_path, "iepile", "NER", content, filename="ner.json", language="zh")
    )
    assert [r.origin for r in result.records] == ["ner.json:1", "ner.json:4"]
    assert len(result.quarantine) == 1
    assert result.quarantine[0].origin == "ner.json:2"
    assert result.quarantine[0].reason.startswith("invalid JSON")
    assert result.quarantine[0].raw == '{"text": "坏行", "entity": ['
    assert result.schema.types == ["人物", "地点"]  # mined without a schema file


def test_iepile_span_not_found_and_missing_fields(tmp_path):
    content = jsonl(
        {"text": "王五在杭州工作。", "entity": [{"entity": "Foo", "entity_type": "人物"}]},
        {"entity": []},
        {"text": "文本", "entity": [{"entity": "文本"}]},
        {"text": "没有实体字段"},
        ["not", "an", "object"],
        {"text": "  保留空格  ", "entity": [{"entity": "空格", "entity_type": "概念"}]},
    )
    entry = make_entry(tmp_path, "iepile", "NER", content, language="zh")
    result = read_source(entry)
    assert reasons(result) == [
        "entity 'Foo' not found in text",
        "missing field 'text'",
        "entity without 'entity_type'",
        "missing field 'entity'",
        "expected a JSON object, got array",
    ]
    assert [q.origin for q in result.quarantine] == [f"data.txt:{i}" for i in range(1, 6)]
    # The text is kept exactly, spaces included.
    assert [r.text for r in result.records] == ["  保留空格  "]

    # Keeping unplaced entities is for scoring a benchmark on its full gold, never for
    # training rows.
    keep = make_entry(
        tmp_path, "iepile", "NER", content, language="zh", options={"missing_spans": "keep"},
        split="test",
    )  # fmt: skip
    kept = read_source(keep)
    assert kept.records[0].gold["entities"] == [{"text": "Foo", "type": "人物", "start": None}]
    train = make_entry(
        tmp_path, "iepile", "NER", content, language="zh", options={"missing_spans": "keep"}
    )
    with pytest.raises(SourceError, match="dev/test splits only"):
        read_source(train)


def test_iepile_schema_labels_are_enforced(tmp_path):
    (tmp_path / "schema.json").write_text('[]\n["作者", "导演"]\n{}\n', encoding="utf-8")
    content = jsonl(
        {
            "text": "《夜航》由林川导演",
            "relation": [{"head": "夜航", "relation": "导演", "tail": "林川"}],
        },
        {
            "text": "《晨曲》的作者是木子",
            "relation": [{"head": "晨曲", "relation": "作曲", "tail": "木子"}],
        },
    )
    entry = make_entry(
        tmp_path, "iepile", "RE", content, language="zh", options={"schema": "schema.json"}
    )
    result = read_source(entry)
    assert len(result.records) == 1
    assert reasons(result) == ["unknown relation '作曲'"]
    assert result.schema == LabelSchema(roles=["作者", "导演"])
    assert str(tmp_path / "schema.json") in result.files


def test_iepile_ee_roles_checked_against_type_roles(tmp_path):
    (tmp_path / "s.json").write_text(
        '["人生-婚礼"]\n["地点", "时间"]\n{"人生-婚礼": ["地点", "时间"]}\n', encoding="utf-8"
    )
    good = {
        "event_trigger": "婚礼",
        "event_type": "人生-婚礼",
        "arguments": [{"argument": "大理", "role": "地点"}],
    }
    bad_role = {
        "event_trigger": "婚礼",
        "event_type": "人生-婚礼",
        "arguments": [{"argument": "大理", "role": "新郎"}],
    }
    bad_type = {"event_trigger": "离婚", "event_type": "人生-离婚"}
    content = jsonl(
        {"text": "他们在大理举办婚礼", "event": [good]},
        {"text": "他们在大理举办了婚礼", "event": [bad_role]},
        {"text": "两人宣布离婚", "event": [bad_type]},
    )
    entry = make_entry(
        tmp_path, "iepile", "EE", content, language="zh", options={"schema": "s.json"}
    )
    result = read_source(entry)
    assert result.records[0].gold["events"][0]["arguments"] == [
        {"role": "地点", "argument": "大理"}
    ]
    assert reasons(result) == [
        "unknown role '新郎' for event type '人生-婚礼'",
        "unknown event type '人生-离婚'",
    ]


def test_iepile_kge_needs_an_entity_type(tmp_path):
    content = jsonl(
        {"text": "甲，字乙", "relation": [{"head": "甲", "relation": "字", "tail": "乙"}]}
    )
    entry = make_entry(tmp_path, "iepile", "KGE", content, language="zh")
    with pytest.raises(SourceError, match="entity_type"):
        read_source(entry)
    entry = make_entry(
        tmp_path, "iepile", "KGE", content, language="zh", options={"entity_type": "人物"}
    )
    result = read_source(entry)
    assert result.records[0].gold == {
        "entity_type": "人物",
        "relations": [{"head": "甲", "relation": "字", "tail": "乙"}],
    }
    assert result.schema == LabelSchema(types=["人物"], roles=["字"], type_roles={"人物": ["字"]})


def test_read_iepile_schema_errors_name_file_and_line(tmp_path):
    path = tmp_path / "schema.json"
    path.write_text('["a"]\n["r1"]\n{"a": ["r1"]}', encoding="utf-8")  # no final newline
    assert read_iepile_schema(str(path)) == LabelSchema(
        types=["a"], roles=["r1"], type_roles={"a": ["r1"]}
    )
    path.write_text('["a"]\n', encoding="utf-8")
    assert read_iepile_schema(str(path)) == LabelSchema(types=["a"])
    for content, line in (
        ('["a"]\n{"x": 1}\n', 2),
        ('["a"]\n[]\n{}\n[]\n', 4),
        ("[1, 2]\n", 1),
        ('["a"]\n[\n', 2),
    ):
        path.write_text(content, encoding="utf-8")
        with pytest.raises(SourceError) as info:
            read_iepile_schema(str(path))
        assert info.value.line == line, content
        assert str(path) in str(info.value)
    with pytest.raises(SourceError, match="file not found"):
        read_iepile_schema(str(tmp_path / "nope.json"))


def test_iepile_json_array_file_and_task_check(tmp_path):
    content = json.dumps(
        [{"text": "甲乙", "relation": [{"head": "甲", "relation": "邻", "tail": "乙"}]},
         {"text": "丙丁", "relation": []}],
        ensure_ascii=False,
    )  # fmt: skip
    result = read_source(make_entry(tmp_path, "iepile", "RE", "\n" + content, language="zh"))
    assert [r.origin for r in result.records] == ["data.txt#0", "data.txt#1"]
    with pytest.raises(SourceError, match="format 'iepile' cannot serve task 'MRC'"):
        read_source(make_entry(tmp_path, "iepile", "MRC", content, language="zh"))


# ---------------------------------------------------------------------------- whole-source errors


@pytest.mark.parametrize(
    "fmt,task",
    [
        ("conll", "NER"),
        ("iepile", "NER"),
        ("fewrel", "RE"),
        ("c3", "MRC"),
        ("csv", "TC"),
        ("carb", "OpenIE"),
        ("alpaca", "IG"),
    ],
)
def test_missing_file_is_a_source_error_naming_the_path(tmp_path, fmt, task):
    entry = CatalogEntry(
        name="gone",
        task=task,
        language="en",
        format=fmt,
        location="missing/file.txt",
        catalog_path=str(tmp_path / "catalog.yaml"),
    )
    with pytest.raises(SourceError) as info:
        read_source(entry)
    assert str(tmp_path / "missing" / "file.txt") in str(info.value)
    assert "file not found" in str(info.value)


@pytest.mark.parametrize(
    "fmt,task,good",
    [
        ("conll", "NER", "a\tO\n\nb\tO\n\n"),
        ("iepile", "NER", '{"text": "a", "entity": []}\n{"text": "b", "entity": []}\n'),
        ("csv", "TC", "label,text\npos,a\nneg,b\n"),
        ("carb", "OpenIE", "s\tr\ta\tb\ns2\tr\ta\tb\n"),
        (
            "fewrel",
            "RE",
            '{"P1": [\n{"tokens": ["a"], "h": ["a", "Q", [[0]]], "t": ["a", "Q", [[0]]]}\n]}\n',
        ),
    ],
)
def test_not_utf8_is_a_source_error_with_line(tmp_path, fmt, task, good):
    lines = good.encode("utf-8").split(b"\n")
    lines[2] = lines[2] + b" caf\xe9"  # Latin-1 on line 3
    entry = make_entry(tmp_path, fmt, task, b"\n".join(lines))
    with pytest.raises(SourceError) as info:
        read_source(entry)
    assert info.value.line == 3
    assert "not UTF-8" in info.value.reason
    assert str(tmp_path / "data.txt") in str(info.value)


@pytest.mark.parametrize(
    "fmt,task,content,message",
    [
        ("fewrel", "RE", "[]", "expected a JSON object"),
        ("fewrel", "RE", '{"P1": {"tokens": []}}', "expected a list of instances"),
        ("c3", "MRC", '{"data": []}', "expected a JSON array"),
        ("squad", "MRC", "[[], []]", "'data' list"),
        ("alpaca", "IG", '{\n "instruction": "x",\n "output": "y"\n}\n', "got one JSON object"),
        ("fewrel", "RE", '{"P1": [\n  {"tokens": }\n]}', "invalid JSON"),
    ],
)
def test_wrong_top_level_json_is_a_source_error(tmp_path, fmt, task, content, message):
    with pytest.raises(SourceError, match=message) as info:
        read_source(make_entry(tmp_path, fmt, task, content))
    if message == "invalid JSON":
        assert info.value.line == 2


def test_fewrel_without_pid2name_and_bad_instances(tmp_path):
    data = {
        "P26": [
            {
                "tokens": ["Ann", "married", "Bob"],
                "h": ["ann", "Q1", [[0]]],
                "t": ["bob", "Q2", [[2]]],
            },
            {
                "tokens": ["Ann", "married", "Bob"],
                "h": ["ann", "Q1", [[0]]],
                "t": ["bob", "Q2", [[7]]],
            },
            {
                "tokens": ["Ann", "married", "Bob"],
                "h": ["ann", "Q1", [[0]]],
                "t": ["bob", "Q2", [[2]]],
            },
            {"h": ["x"]},
        ]
    }
    result = read_source(make_entry(tmp_path, "fewrel", "RE", json.dumps(data), filename="f.json"))
    assert result.records[0].gold["relations"] == [
        {"head": "Ann", "relation": "P26", "tail": "Bob"}
    ]
    assert [(q.origin, q.reason) for q in result.quarantine] == [
        ("f.json#P26/1", "'t' token position 7 outside the 3 tokens"),
        ("f.json#P26/3", "missing field 'tokens'"),
    ]
    # A repeated instance is kept, with its own id, and counted.
    assert [r.origin for r in result.records] == ["f.json#P26/0", "f.json#P26/2"]
    assert result.records[0].record_id != result.records[1].record_id
    assert [(d.origin, d.first) for d in result.duplicates] == [("f.json#P26/2", "f.json#P26/0")]
    assert result.schema.roles == ["P26"]


def test_pid2name_shape_error(tmp_path):
    path = tmp_path / "pid.json"
    path.write_text('{"P1": "spouse"}', encoding="utf-8")
    with pytest.raises(SourceError, match="expected \\[name, description\\]"):
        load_pid2name(str(path))


# ---------------------------------------------------------------------------- MRC, TC, OpenIE, IG


def test_c3_answer_not_among_choices(tmp_path):
    data = [
        [
            ["文章。"],
            [
                {"question": "问？", "choice": ["甲", "乙"], "answer": "丙"},
                {"question": "问二？", "choice": ["甲", "乙"], "answer": "乙"},
            ],
            "x",
        ],
        "not a document",
    ]
    result = read_source(
        make_entry(tmp_path, "c3", "MRC", json.dumps(data, ensure_ascii=False), language="zh")
    )
    assert [r.gold["answers"] for r in result.records] == [["乙"]]
    assert [(q.origin, q.reason) for q in result.quarantine] == [
        ("data.txt#0.0", "answer '丙' is not one of the choices"),
        ("data.txt#1", "expected [context, questions, id]"),
    ]


def test_squad_answer_not_in_context(tmp_path):
    data = {
        "data": [
            {
                "paragraphs": [
                    {
                        "context": "The cat sat on the mat.",
                        "qas": [
                            {
                                "id": "q1",
                                "question": "Where?",
                                "answers": [{"text": "on the mat", "answer_start": 12}],
                            },
                            {
                                "id": "q2",
                                "question": "Who?",
                                "answers": [{"text": "the dog", "answer_start": 0}],
                            },
                            {"id": "q3", "question": "Why?", "answers": [], "is_impossible": True},
                            {
                                "id": "q4",
                                "question": "Where exactly?",
                                "answers": [{"text": "the mat", "answer_start": 3}],
                            },
                            {"id": "q5", "question": "Sure?", "answers": [],
                             "is_impossible": "false"},  # a string, not a boolean
                        ],
                    }
                ]
            }
        ]
    }
    result = read_source(make_entry(tmp_path, "squad", "MRC", json.dumps(data)))
    assert [r.origin for r in result.records] == ["data.txt#q1", "data.txt#q3"]
    assert reasons(result) == [
        "answer 'the dog' not found in context",
        "answer 'the mat' is not in the context at answer_start 3",
        "'is_impossible' must be true or false, got string 'false'",
    ]


def test_csv_multiline_columns_filter_and_labels(tmp_path):
    content = (
        "label,text,is_valid\n"
        'positive,"line one\nline two, with comma",False\n'  # lines 2-3
        "negative,short,True\n"  # line 4, filtered out
        "negative,too,many,columns\n"  # line 5
        "neutral,meh,False\n"  # line 6, unknown label
        ",no label,False\n"  # line 7
        'negative,"",False\n'  # line 8, empty text
        "negative,fine,false\n"  # line 9
    )
    options = {"labels": ["negative", "positive"], "filter": {"is_valid": False}}
    result = read_source(
        make_entry(tmp_path, "csv", "TC", content, filename="t.csv", options=options)
    )
    assert [(r.origin, r.text, r.gold["label"]) for r in result.records] == [
        ("t.csv:2", "line one\nline two, with comma", "positive"),
        ("t.csv:9", "fine", "negative"),
    ]
    assert [(q.origin, q.reason) for q in result.quarantine] == [
        ("t.csv:5", "expected 3 columns, got 4"),
        ("t.csv:6", "unknown label 'neutral'"),
        ("t.csv:7", "empty label"),
        ("t.csv:8", "empty text"),
    ]
    assert result.schema.types == ["negative", "positive"]
    unfiltered = read_source(make_entry(tmp_path, "csv", "TC", content, filename="t.csv"))
    assert len(unfiltered.records) == 4 and unfiltered.schema.types == [
        "negative",
        "neutral",
        "positive",
    ]


def test_csv_missing_column_is_a_source_error(tmp_path):
    entry = make_entry(
        tmp_path, "csv", "TC", "label,body\npos,x\n", options={"text_column": "review"}
    )
    with pytest.raises(SourceError, match="no column 'review'") as info:
        read_source(entry)
    assert info.value.line == 1


def test_jsonl_classification_columns_and_array(tmp_path):
    content = jsonl(
        {"sentence": "好评", "y": 1},
        {"sentence": "差评", "y": 0},
        {"y": 1},
        {"sentence": "没有标签"},
    )
    options = {"text_column": "sentence", "label_column": "y"}
    # A label is a string: numbers are not classes unless label_map names them.
    result = read_source(
        make_entry(tmp_path, "jsonl", "TC", content, language="zh", options=options)
    )
    assert result.records == []
    assert reasons(result) == [
        "label must be a string, got number 1",
        "label must be a string, got number 0",
        "missing text field 'sentence'",
        "empty label",
    ]
    mapped = {**options, "label_map": {1: "好", 0: "坏"}}
    result = read_source(
        make_entry(tmp_path, "jsonl", "TC", content, language="zh", options=mapped)
    )
    assert [r.gold for r in result.records] == [{"label": "好"}, {"label": "坏"}]
    assert result.schema.types == ["坏", "好"]


def test_carb_short_rows_are_quarantined(tmp_path):
    content = "S one .\tis\tS\tone\nS two .\tonly two\nS one .\tis\tS\tone\nS three .\thas\tS\n"
    result = read_source(make_entry(tmp_path, "carb", "OpenIE", content))
    assert [r.text for r in result.records] == ["S one .", "S three ."]
    assert len(result.records[0].gold["triples"]) == 1  # identical rows count once
    assert result.records[1].gold["triples"] == [
        {"subject": "S", "predicate": "has", "object": "", "extra": []}
    ]
    assert [(q.origin, q.reason) for q in result.quarantine] == [
        ("data.txt:2", "expected at least 3 tab-separated columns, got 2")
    ]


def test_instruct_bad_conversations_are_quarantined(tmp_path):
    content = jsonl(
        {"conversations": [{"from": "human", "value": "你好"}, {"from": "gpt", "value": "你好！"}]},
        {"conversations": [{"from": "human", "value": "只有问题"}]},
        {"conversations": [{"from": "human", "value": "问"}, {"from": "gpt", "value": "  "}]},
        {"conversations": [{"from": "robot", "value": "问"}, {"from": "gpt", "value": "答"}]},
        {"conversations": [{"from": "gpt", "value": "答"}]},
        {"dialog": []},
    )
    result = read_source(make_entry(tmp_path, "sharegpt", "IG", content, language="zh"))
    assert len(result.records) == 1
    assert reasons(result) == [
        "conversation does not end with an assistant turn",
        "empty assistant turn",
        "unknown role 'robot'",
        "conversation has no user turn",
        "missing field 'conversations' (or 'messages')",
    ]
    alpaca = json.dumps(
        [
            {"instruction": "Say hi", "input": "", "output": ""},
            {"instruction": "Say hi", "output": "Hi"},
        ]
    )
    result = read_source(make_entry(tmp_path, "alpaca", "IG", alpaca))
    assert reasons(result) == ["empty assistant turn"]
    assert result.records[0].origin == "data.txt#1"


# ---------------------------------------------------------------------------- ids, duplicates, text


@pytest.mark.parametrize("split", ["train", "test"])
def test_duplicates_are_kept_counted_and_droppable(tmp_path, split):
    row = {"text": "重复的句子。", "entity": [{"entity": "句子", "entity_type": "概念"}]}
    content = jsonl(row, {"text": "别的。", "entity": []}, row, row)
    result = read_source(
        make_entry(tmp_path, "iepile", "NER", content, language="zh", split=split)
    )
    # A repeat is a property of the dataset: one record per line, never quarantined.
    assert [r.origin for r in result.records] == [
        "data.txt:1", "data.txt:2", "data.txt:3", "data.txt:4"
    ]  # fmt: skip
    assert result.quarantine == []
    assert len({r.record_id for r in result.records}) == 4  # each its own id
    assert result.records[0].text_id == result.records[2].text_id  # same text
    assert [(d.origin, d.first, d.dropped) for d in result.duplicates] == [
        ("data.txt:3", "data.txt:1", False),
        ("data.txt:4", "data.txt:1", False),
    ]
    assert result.duplicate_summary() == (
        "2 duplicate records kept: data.txt:3 (= data.txt:1), data.txt:4 (= data.txt:1)"
    )
    # The first occurrence keeps the content id a source without repeats would give.
    alone = read_source(make_entry(tmp_path, "iepile", "NER", jsonl(row), language="zh"))
    assert alone.records[0].record_id == result.records[0].record_id
    dropped = read_source(
        make_entry(tmp_path, "iepile", "NER", content, language="zh", split=split,
                   options={"duplicates": "drop"})
    )  # fmt: skip
    assert [r.origin for r in dropped.records] == ["data.txt:1", "data.txt:2"]
    assert all(d.dropped for d in dropped.duplicates) and len(dropped.duplicates) == 2
    assert dropped.duplicate_summary().startswith("2 duplicate records dropped: data.txt:3")
    with pytest.raises(SourceError, match="option 'duplicates'"):
        read_source(make_entry(tmp_path, "iepile", "NER", content, language="zh",
                               options={"duplicates": "quarantine"}))  # fmt: skip
    # Same text with different gold is not a duplicate.
    other = {"text": "重复的句子。", "entity": [{"entity": "重复", "entity_type": "概念"}]}
    assert (
        read_source(
            make_entry(tmp_path, "iepile", "NER", jsonl(row, other), language="zh")
        ).quarantine
        == []
    )


def test_record_ids_are_deterministic_and_content_based(tmp_path, assets_dir):
    entry = next(e for e in load_catalog(assets_dir / "catalog.yaml") if e.name == "ner_zh_iepile")
    first = [r.record_id for r in read_source(entry).records]
    second = [r.record_id for r in read_source(entry).records]
    assert first == second
    # Same content elsewhere on disk: same ids (the path is not part of the id).
    shutil.copytree(assets_dir / "samples", tmp_path / "samples")
    shutil.copy(assets_dir / "catalog.yaml", tmp_path / "catalog.yaml")
    moved = next(e for e in load_catalog(tmp_path / "catalog.yaml") if e.name == "ner_zh_iepile")
    assert [r.record_id for r in read_source(moved).records] == first
    # Different text, different id.
    a = read_source(make_entry(tmp_path, "conll", "NER", "Anna\tB-PER\n", filename="a.txt"))
    b = read_source(make_entry(tmp_path, "conll", "NER", "Anne\tB-PER\n", filename="b.txt"))
    assert a.records[0].record_id != b.records[0].record_id


def test_chinese_text_is_preserved_exactly(tmp_path):
    text = "「深度学习」在２０２４年，取得了突破……\u3000全角空格、emoji 🚀 都保留。"
    result = read_source(
        make_entry(tmp_path, "jsonl", "TC", jsonl({"text": text, "label": "科技"}), language="zh")
    )
    assert result.records[0].text == text
    assert result.records[0].gold == {"label": "科技"}
    row = result.records[0].to_row()
    assert "深度学习" in row["gold"] + row["text"]


def test_readers_restore_the_garbage_collector(tmp_path):
    import gc

    assert gc.isenabled()
    read_source(make_entry(tmp_path, "conll", "NER", "Anna\tB-PER\n"))
    assert gc.isenabled()
    with pytest.raises(SourceError):
        read_source(make_entry(tmp_path, "c3", "MRC", "{}"))
    assert gc.isenabled()
