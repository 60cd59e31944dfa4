"""Instruction wording: built-ins complete, user overrides, aliases, errors."""

from __future__ import annotations

import json

import pytest

from hum_dagster.records import LANGUAGES
from hum_dagster.synthesis.templates import TEMPLATE_TASKS, load_templates

EXPECTED_TASKS = ("NER", "RE", "SPO", "EE", "EET", "EEA", "OpenIE", "KGE", "MRC", "TC")


def test_builtin_keys_cover_every_task_and_language():
    templates = load_templates()
    assert set(TEMPLATE_TASKS) == set(EXPECTED_TASKS)
    assert set(templates) == {f"{t}{lang}" for t in EXPECTED_TASKS for lang in ("en", "zh")}
    for key, wording in templates.items():
        assert wording.strip(), key
    # Each wording tells the output structure and the empty / NAN convention.
    for task in ("EE", "EEA"):
        for lang in LANGUAGES:
            assert "NAN" in templates.wording(task, lang)
    assert "empty list" in templates.wording("NER", "en")
    assert "空列表" in templates.wording("NER", "zh")
    assert '"label"' in templates.wording("TC", "en")


def test_builtin_wording_is_our_own_not_iepile(shared_fixture_wording):
    builtin = load_templates()
    for key, wording in shared_fixture_wording.items():
        assert builtin[key] != wording


def test_version_is_short_stable_hash():
    a, b = load_templates(), load_templates()
    assert a.version == b.version
    assert len(a.version) == 12 and all(c in "0123456789abcdef" for c in a.version)
    assert a.ref("NER", "en") == f"NERen@{a.version}"


def test_user_file_overrides_key_by_key(tmp_path):
    path = tmp_path / "mine.json"
    path.write_text(json.dumps({"NERen": "Find the entities.", "KGzh": "抽取实体属性。"}), "utf-8")
    builtin = load_templates()
    mine = load_templates(path)
    assert mine.wording("NER", "en") == "Find the entities."
    assert mine.wording("KGE", "zh") == "抽取实体属性。"  # KG is an alias of KGE
    assert mine.wording("KG", "zh") == "抽取实体属性。"
    assert mine.wording("RE", "en") == builtin.wording("RE", "en")
    assert mine.version != builtin.version
    assert len(mine) == len(builtin)


@pytest.mark.parametrize(
    "content, message",
    [
        ({"NERfr": "x"}, "'NERfr'"),
        ({"XYZen": "x"}, "'XYZen'"),
        ({"NERen": ""}, "'NERen'"),
        (["NERen"], "expected a JSON object"),
    ],
)
def test_bad_user_file_names_file_and_key(tmp_path, content, message):
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(content), "utf-8")
    with pytest.raises(ValueError) as info:
        load_templates(path)
    assert str(path) in str(info.value)
    assert message in str(info.value)


def test_missing_or_broken_file(tmp_path):
    with pytest.raises(ValueError, match="not found"):
        load_templates(tmp_path / "absent.json")
    broken = tmp_path / "broken.json"
    broken.write_text("{nope", "utf-8")
    with pytest.raises(ValueError, match="not valid JSON"):
        load_templates(broken)


@pytest.fixture
def shared_fixture_wording():
    from pathlib import Path

    path = Path(__file__).parents[1] / "fixtures" / "iepile_wording.json"
    return json.loads(path.read_text("utf-8"))
