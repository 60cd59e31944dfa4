"""parse_output: round-trips of every style (property tests), golden renderings, and
realistic messy model outputs."""

from __future__ import annotations

import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hum_dagster.synthesis.formats import (
    FORMAT_STYLES,
    STRUCTURED_TASKS,
    is_empty_token,
    render,
    style_applies,
)
from hum_dagster.synthesis.parser import parse_output

FAST = settings(
    max_examples=int(__import__("os").environ.get("HUM_HYPOTHESIS_EXAMPLES", "25")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)

# ---------------------------------------------------------------- strategies

# Letters, digits, CJK, spaces and every separator the text styles use, quotes,
# backslashes, pipes, markup characters and line breaks.
_ALPHABET = st.one_of(
    st.sampled_from(list("abcXYZ019 ,;:|\"'()[]{}<>&\\/-*#=\n\t，；：、（）“”【】。")),
    st.sampled_from(list("北京张三事件论元的了")),
    st.characters(codec="utf-8", exclude_categories=("Cs", "Co", "Cn")),
)


def _valid(s: str) -> bool:
    # Restriction shared by all styles: values are stripped and are not an empty spelling.
    return bool(s) and s == s.strip() and not is_empty_token(s)


TEXT = st.text(_ALPHABET, min_size=1, max_size=10).map(str.strip).filter(_valid)
# Label names of one schema differ by more than letter case (the parser matches labels
# case-insensitively, as models often change case).
LABELS = st.lists(TEXT, min_size=1, max_size=3, unique_by=str.casefold)


def _arg_value():
    # A single value is a string; several values are a list of at least two (distinct).
    return st.one_of(
        TEXT,
        st.just("NAN"),
        st.lists(TEXT, min_size=2, max_size=3, unique=True),
    )


@st.composite
def answers(draw, task: str):
    """(canonical value, schema items) for ``task``."""
    if task == "OpenIE":
        triples = draw(
            st.lists(
                st.builds(
                    lambda s, p, o, extra: (
                        {"subject": s, "predicate": p, "object": o}
                        | ({"extra": extra} if extra else {})
                    ),
                    TEXT,
                    TEXT,
                    TEXT,
                    st.lists(TEXT, max_size=2),
                ),
                max_size=3,
                unique_by=lambda t: json.dumps(t, sort_keys=True),
            )
        )
        return triples, []
    labels = draw(LABELS)
    value: dict = {}
    schema: list = []
    for label in labels:
        if task in ("NER", "EET"):
            value[label] = draw(st.lists(TEXT, max_size=3, unique=True))
            schema.append(label)
        elif task in ("RE", "SPO"):
            pairs = draw(
                st.lists(
                    st.builds(lambda s, o: {"subject": s, "object": o}, TEXT, TEXT),
                    max_size=3,
                    unique_by=lambda p: (p["subject"], p["object"]),
                )
            )
            value[label] = pairs
            if task == "SPO":
                schema.append({"subject_type": "T1", "predicate": label, "object_type": "T2"})
            else:
                schema.append(label)
        elif task in ("EE", "EEA"):
            roles = draw(st.lists(TEXT, min_size=1, max_size=3, unique=True))
            events = []
            for _ in range(draw(st.integers(0, 2))):
                args = {r: draw(_arg_value()) for r in roles}
                if task == "EE":
                    trigger = draw(st.one_of(TEXT, st.just("NAN")))
                    if trigger == "NAN" and all(a == "NAN" for a in args.values()):
                        continue  # restriction: an event with nothing in it is no event
                    events.append({"trigger": trigger, "arguments": args})
                elif any(a != "NAN" for a in args.values()):
                    events.append(args)
            value[label] = events
            item = {"event_type": label, "arguments": roles}
            if task == "EE":
                item["trigger"] = True
            schema.append(item)
        else:  # KGE
            attributes = draw(st.lists(TEXT, min_size=1, max_size=3, unique=True))
            entities = {}
            for name in draw(st.lists(TEXT, max_size=2, unique=True)):
                chosen = draw(st.lists(st.sampled_from(attributes), min_size=1, unique=True))
                entities[name] = {
                    a: draw(st.one_of(TEXT, st.lists(TEXT, min_size=2, max_size=3, unique=True)))
                    for a in chosen
                }
            value[label] = entities
            schema.append({"entity_type": label, "attributes": attributes})
    return value, schema


def _variants(task: str):
    for sid, fmt in FORMAT_STYLES.items():
        if task not in fmt.tasks:
            continue
        for empty in fmt.empties or ("NAN",):
            for layout in range(fmt.layouts):
                for language in fmt.languages:
                    yield sid, empty, layout, language


def _roundtrip(task: str, value, schema) -> None:
    for sid, empty, layout, language in _variants(task):
        if not style_applies(FORMAT_STYLES[sid], task, value, []):
            continue  # the generator never renders these (e.g. a table headed by a pipe label)
        text = render(sid, task, value, empty, layout, language)
        parsed = parse_output(task, text, schema)
        assert parsed.ok, (sid, empty, layout, text, parsed)
        assert parsed.value == value, (sid, empty, layout, language, text, parsed.value)
        # Also without fences and with fences and prose around it.
        fenced = f"Here is the answer:\n```\n{text}\n```\nHope this helps."
        again = parse_output(task, fenced, schema)
        assert again.value == value, (sid, empty, layout, "fenced", text, again.value)


@pytest.mark.parametrize("task", STRUCTURED_TASKS)
@FAST
@given(data=st.data())
def test_render_then_parse_gives_back_the_answer(task, data):
    value, schema = data.draw(answers(task))
    _roundtrip(task, value, schema)


@pytest.mark.parametrize("task", STRUCTURED_TASKS)
def test_all_empty_answers_roundtrip(task):
    if task == "OpenIE":
        value, schema = [], []
    elif task == "KGE":
        value = {"人物": {}, "place": {}}
        schema = [
            {"entity_type": "人物", "attributes": ["a"]},
            {"entity_type": "place", "attributes": ["b"]},
        ]
    elif task in ("EE", "EEA"):
        value = {"Attack": [], "死亡": []}
        schema = [{"event_type": k, "arguments": ["r"]} for k in value]
    elif task == "SPO":
        value = {"founded by": [], "出生地": []}
        schema = [{"subject_type": "a", "predicate": k, "object_type": "b"} for k in value]
    else:
        value = {"person": [], "地点": []}
        schema = list(value)
    _roundtrip(task, value, schema)


# ---------------------------------------------------------------- MRC / TC

OPTIONS = ["the red one", "B", "蓝色的, 那个", "none of: these"]


@FAST
@given(st.sampled_from(OPTIONS), st.sampled_from(["en", "zh"]))
def test_mrc_choice_styles_roundtrip(answer, language):
    value = {"answer": answer}
    for sid, fmt in FORMAT_STYLES.items():
        if "MRC" not in fmt.tasks or not style_applies(fmt, "MRC", value, OPTIONS):
            continue
        text = render(sid, "MRC", value, "NAN", 0, language, OPTIONS)
        parsed = parse_output("MRC", text, OPTIONS)
        assert parsed.ok and parsed.value == value, (sid, text, parsed)


# Restriction: an extractive answer that is itself a JSON/Python list or an
# {"answer": ...} literal is read as that structure.
_FREE_TEXT = TEXT.filter(lambda s: "\n" not in s and s[0] not in "[{")


@FAST
@given(_FREE_TEXT, st.sampled_from(["en", "zh"]))
def test_mrc_extractive_styles_roundtrip(answer, language):
    value = {"answer": answer}
    for sid, fmt in FORMAT_STYLES.items():
        if "MRC" not in fmt.tasks or not style_applies(fmt, "MRC", value, []):
            continue
        text = render(sid, "MRC", value, "NAN", 0, language, [])
        parsed = parse_output("MRC", text, [])
        assert parsed.value == value, (sid, text, parsed)


@FAST
@given(
    st.lists(TEXT.filter(lambda s: "\n" not in s), min_size=2, max_size=4, unique=True), st.data()
)
def test_tc_styles_roundtrip(labels, data):
    label = data.draw(st.sampled_from(labels))
    value = {"label": label}
    for sid, fmt in FORMAT_STYLES.items():
        if "TC" not in fmt.tasks:
            continue
        for language in ("en", "zh"):
            text = render(sid, "TC", value, "NAN", 0, language)
            parsed = parse_output("TC", text, labels)
            assert parsed.value == value, (sid, text, parsed)


def test_mrc_multiple_letters():
    value = {"answer": ["the red one", "蓝色的, 那个"]}
    text = render("option_letter", "MRC", value, options=OPTIONS)
    assert text == "A, C"
    assert parse_output("MRC", text, OPTIONS).value == value


def test_mrc_messy_answers():
    opts = ["去公园", "去学校", "在家里", "不知道"]
    cases = {
        "B": "去学校",
        "答案：C": "在家里",
        "The answer is (B).": "去学校",
        "B. 去学校": "去学校",
        "正确答案是 去公园。": "去公园",
        '```json\n{"answer": "D"}\n```': "不知道",
        "我认为他们在家里。": "在家里",
    }
    for text, expected in cases.items():
        parsed = parse_output("MRC", text, opts)
        assert parsed.value == {"answer": expected}, (text, parsed)
    bad = parse_output("MRC", "I cannot tell.", opts)
    assert not bad.ok and bad.error


def test_tc_messy_answers():
    labels = ["positive", "negative"]
    for text, expected in {
        "Positive": "positive",
        "Label: negative.": "negative",
        "Sentiment: **positive**": "positive",
        "{'label': 'negative',}": "negative",
        "The review is clearly negative overall.": "negative",
    }.items():
        assert parse_output("TC", text, labels).value == {"label": expected}, text


# ---------------------------------------------------------------- messy model outputs

NER_SCHEMA = ["person", "location", "organization"]


@pytest.mark.parametrize(
    "text",
    [
        'Sure! Here are the entities:\n```json\n{"person": ["Obama"], "location": ["Hawaii"], "organization": []}\n```',
        '{"person": ["Obama",], "location": ["Hawaii",],}',
        "{'person': ['Obama'], 'location': ['Hawaii'], 'organization': None}",
        '{"person"：["Obama"]，"location"：["Hawaii"]}',
        "{person: [Obama], location: [Hawaii], organization: []}",
        'The extracted entities are {"person": ["Obama"], "location": ["Hawaii"]} as requested.',
        "person: Obama\nlocation: Hawaii\norganization: NAN",
        "Here you go:\n\n- **person**: Obama\n- **location**: Hawaii\n- organization: None\n\nLet me know!",
        "| entity | type |\n|---|---|\n| Obama | person |\n| Hawaii | location |",
        "(Obama, person)\n(Hawaii, location)",
        "[('Obama', 'person'), ('Hawaii', 'location')]",
        '[{"entity": "Obama", "type": "person"}, {"entity": "Hawaii", "type": "location"}]',
        '<entity type="person">Obama</entity>\n<entity type="location">Hawaii</entity>',
        "person:\n  - Obama\nlocation:\n  - Hawaii\norganization: []",
        "Person: Obama\nLocation: Hawaii",
        "person：Obama\nlocation：Hawaii\norganization：无",
    ],
)
def test_messy_ner_outputs(text):
    parsed = parse_output("NER", text, NER_SCHEMA)
    assert parsed.value == {"person": ["Obama"], "location": ["Hawaii"], "organization": []}, (
        text,
        parsed,
    )


def test_truncated_json_keeps_what_was_read():
    parsed = parse_output("NER", '{"person": ["Obama", "Biden"], "location": ["Haw', NER_SCHEMA)
    assert not parsed.ok and "truncated" in parsed.error
    assert parsed.value["person"] == ["Obama", "Biden"]


def test_unparseable_never_raises():
    for text in ["", "I don't know.", "}}}{{{", "\x00\x01", "|||", "<entity", None, 42]:
        parsed = parse_output("NER", text, NER_SCHEMA)
        assert isinstance(parsed.ok, bool)
        assert parsed.value is None or set(parsed.value) >= set(NER_SCHEMA)
    assert not parse_output("NER", "I don't know.", NER_SCHEMA).ok
    assert parse_output("NER", "None", NER_SCHEMA).ok
    assert parse_output("NER", "No entities were found.", NER_SCHEMA).style == "empty"
    assert not parse_output("XX", "{}", None).ok


def test_unknown_labels_are_kept_apart():
    parsed = parse_output("NER", '{"person": ["Obama"], "animal": ["cat"]}', NER_SCHEMA)
    assert parsed.value == {"person": ["Obama"], "location": [], "organization": []}
    assert parsed.unknown == {"animal": ["cat"]}


def test_no_schema_reads_what_is_there():
    assert parse_output("RE", "(Apple, founded by, Jobs)").value == {
        "founded by": [{"subject": "Apple", "object": "Jobs"}]
    }


def test_ee_roles_filled_with_nan_from_schema():
    schema = [{"event_type": "Attack", "trigger": True, "arguments": ["attacker", "place"]}]
    parsed = parse_output(
        "EE", '{"Attack": [{"trigger": "bombed", "arguments": {"attacker": "rebels"}}]}', schema
    )
    assert parsed.value == {
        "Attack": [{"trigger": "bombed", "arguments": {"attacker": "rebels", "place": "NAN"}}]
    }


def test_detected_styles():
    value = {"person": ["Obama"], "location": []}
    schema = list(value)
    for sid in (
        "json",
        "json_flat",
        "python",
        "tuples",
        "kv_lines",
        "tuple_lines",
        "bullets",
        "markdown_table",
        "xml",
    ):
        text = render(sid, "NER", value, "NAN", 0, "en")
        assert parse_output("NER", text, schema).style == sid, (sid, text)
    assert parse_output(
        "NER", render("kv_lines_zh", "NER", value, "NAN", 0, "zh"), schema
    ).style == ("kv_lines_zh")
