"""The paper's schema dictionary from the LLM, shown: ``dictionary.describe`` and
``dictionary.examples`` against the loopback OpenAI-compatible server (a real aiohttp
server, ``tests/openai_server.py``) answering hand-written plausible or junk answers.

    .venv/bin/python bench/dictionary_examples_demo.py --answers plausible [--show KEY ...]
    .venv/bin/python bench/dictionary_examples_demo.py --answers junk

Sources: the FewRel sample ``re_en_fewrel`` (4 relations, answers in
``tests/dictionary/answers_fewrel.py``) and four relations of the Chinese IEPile RE sample
``re_zh_iepile`` (answers below; the sample has one instance per relation). Prints per
source and step the requests, values, accepted and rejected by reason, what was added,
and the dictionary entries named by ``--show`` as markdown.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests"), str(ROOT / "tests" / "dictionary")]

from answers_fewrel import DESCRIBE, JUNK, PLAUSIBLE, pair  # noqa: E402

ZH_LABELS = ("出生地", "毕业院校", "主演", "作者")
ZH_DESCRIBE = {
    "出生地": {"descriptions": ["人物出生时所在的地点，通常写作省、市或县名。"],
            "synonyms": ["诞生地", "出生城市"]},
    "毕业院校": {"descriptions": ["人物从中毕业的学校，通常是大学或学院。"],
             "synonyms": ["毕业学府", "就读院校"]},
    "主演": {"descriptions": ["影视作品中担任主要角色的演员，主体是作品，客体是演员。"],
           "synonyms": ["领衔主演", "出演"]},
    "作者": {"descriptions": ["书籍、诗集或文章的创作者，主体是作品，客体是作者本人。"],
           "synonyms": ["著者"]},
}
ZH_PLAUSIBLE = {
    "出生地": {
        "positives": [
            {"text": "作家林晓1965年出生于浙江绍兴。", "value": pair("林晓", "浙江绍兴")},
            {"text": "钢琴家周雨出生在四川成都，后移居上海。", "value": pair("周雨", "四川成都")},
            {"text": "陈国平生于湖南长沙，毕业于武汉大学。", "value": pair("陈国平", "湖南长沙")},
            {"text": "演员孙丽出生于黑龙江哈尔滨。", "value": pair("孙丽", "黑龙江哈尔滨")},
        ],
        "negatives": [
            {"text": "钢琴家周雨出生在四川成都，后移居上海。", "value": pair("周雨", "上海"),
             "reason": "上海是移居地，不是出生地"},
            {"text": "林晓祖籍山东济南，出生于浙江绍兴。", "value": pair("林晓", "山东济南"),
             "reason": "祖籍不是出生地"},
        ],
        "candidates": [pair("林晓", "浙江绍兴")],
        "variants": [{"name": "出生地点", "keeps_meaning": True},
                     {"name": "生于", "keeps_meaning": True},
                     {"name": "诞生地", "keeps_meaning": True},
                     {"name": "出生城市", "keeps_meaning": False}],
    },
    "毕业院校": {
        "positives": [
            {"text": "王磊2004年毕业于清华大学建筑系。", "value": pair("王磊", "清华大学")},
            {"text": "李娜本科毕业于复旦大学，后赴美深造。", "value": pair("李娜", "复旦大学")},
            {"text": "张强毕业于北京电影学院表演系。", "value": pair("张强", "北京电影学院")},
        ],
        "negatives": [
            {"text": "王磊曾在清华大学任教十年。", "value": pair("王磊", "清华大学"),
             "reason": "任教不是毕业"},
            {"text": "张强毕业于北京电影学院表演系。", "value": pair("张强", "北京电影学院表演系"),
             "reason": "边界错误：多取了“表演系”"},
        ],
        "candidates": [pair("王磊", "清华大学")],
        "variants": [{"name": "母校", "keeps_meaning": True},
                     {"name": "毕业学校", "keeps_meaning": True},
                     {"name": "毕业学府", "keeps_meaning": True},
                     {"name": "就读院校", "keeps_meaning": False}],
    },
    "主演": {
        "positives": [
            {"text": "电视剧《长河》由刘洋、何静主演。", "value": pair("长河", "刘洋")},
            {"text": "电影《夜航》的主演是吴凡。", "value": pair("夜航", "吴凡")},
        ],
        "negatives": [
            {"text": "电影《夜航》由吴凡主演，郑东客串出演。", "value": pair("夜航", "郑东"),
             "reason": "客串不是主演"},
            {"text": "电影《夜航》的导演是李强。", "value": pair("夜航", "李强"),
             "reason": "这是导演，不是主演"},
        ],
        "candidates": [pair("长河", "刘洋")],
        "variants": [{"name": "主要演员", "keeps_meaning": True},
                     {"name": "担任主演", "keeps_meaning": True},
                     {"name": "领衔主演", "keeps_meaning": True},
                     {"name": "出演", "keeps_meaning": False}],
    },
    "作者": {
        "positives": [
            {"text": "长篇小说《远山》的作者是何明。", "value": pair("远山", "何明")},
        ],
        "negatives": [
            {"text": "《远山》由江南文艺出版社出版。", "value": pair("远山", "江南文艺出版社"),
             "reason": "这是出版社，不是作者"},
        ],
        "candidates": [pair("远山", "何明")],
        "variants": [{"name": "著者", "keeps_meaning": True}],
    },
}
ZH_JUNK = {
    "出生地": {
        "positives": [
            {"text": "Lin Xiao was born in Shaoxing.", "value": pair("Lin Xiao", "Shaoxing")},
            {"text": "许明远，1978年出生于福建泉州，毕业于厦门大学",
             "value": pair("许明远", "福建泉州")},
            {"text": "他出生了。", "value": pair("林晓", "绍兴")},
        ],
        "negatives": [
            {"text": "许明远生于福建泉州。", "value": pair("许明远", "福建泉州"), "reason": "不是"},
            {"text": "周雨移居上海。", "value": pair("周雨", "上海")},
        ],
        "candidates": ["出生地是人出生的地方。", pair("山月集", "沈青禾")],
        "variants": [],
    },
    "作者": {
        "positives": [{"text": "<text>", "value": pair("<subject>", "<object>")}],
        "negatives": [],
        "candidates": [],
        "variants": [{"name": "著者", "keeps_meaning": False}],
    },
}


def by_prompt(describe: dict, examples: dict) -> dict:
    answers = [[f'Label: "{k}"\nKnown descriptions:', json.dumps(v, ensure_ascii=False)]
               for k, v in describe.items()]
    answers += [[f'Label: "{k}"\nDescriptions:', json.dumps(v, ensure_ascii=False)]
                for k, v in examples.items()]
    return {"kind": "by_prompt", "answers": answers}


def zh_subset(records, schema):
    """The Chinese RE sample cut to ZH_LABELS (records keep only those relations)."""
    out = []
    for r in records:
        rels = [x for x in r.gold.get("relations", ()) if x["relation"] in ZH_LABELS]
        if rels:
            out.append(dataclasses.replace(r, gold={**r.gold, "relations": rels}))
    return out, dataclasses.replace(schema, roles=list(ZH_LABELS))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--answers", choices=("plausible", "junk"), required=True)
    parser.add_argument("--show", nargs="*", default=[])
    args = parser.parse_args()
    from openai_server import LoopbackOpenAI

    from hum_dagster.dictionary import build_dictionary, load_seed_book, select_seeds
    from hum_dagster.llm.client import ClientConfig, OpenAIRunner
    from hum_dagster.paths import ASSETS_DIR
    from hum_dagster.readers import read_source
    from hum_dagster.readers.catalog import load_catalog
    from hum_dagster.readers.fewrel import load_pid2name

    os.environ["HUM_DEMO_KEY"] = "sk-demo"
    plausible = args.answers == "plausible"
    runs = {
        "re_en_fewrel": (DESCRIBE, PLAUSIBLE if plausible else JUNK),
        "re_zh_iepile": (ZH_DESCRIBE, ZH_PLAUSIBLE if plausible else ZH_JUNK),
    }
    catalog = {e.name: e for e in load_catalog(ASSETS_DIR / "catalog.yaml")}
    with LoopbackOpenAI() as server, tempfile.TemporaryDirectory() as tmp:
        for name, (describe, examples) in runs.items():
            server.default = by_prompt(describe, examples)
            before = len(server.chat_requests())
            entry = catalog[name]
            result = read_source(entry)
            records, schema = result.records, result.schema
            if name == "re_zh_iepile":
                records, schema = zh_subset(records, schema)
            pid = entry.option("pid2name")
            config = ClientConfig(model="demo-model", base_url=server.base_url,
                                  api_key_env="HUM_DEMO_KEY", structured_output="none",
                                  timeout_s=10, max_invalid_retries=0)
            runner = OpenAIRunner(config, f"{tmp}/cache", "live")
            d, report = build_dictionary(
                name, entry.task, entry.language, records, schema,
                select_seeds(load_seed_book(), name, entry.options or {}),
                pid2name=load_pid2name(entry.resolve(pid)) if pid else None,
                runner=runner, llm_examples=True,
            )
            print(f"## {name} ({args.answers}): {len(server.chat_requests()) - before} chat "
                  "requests to the loopback server")
            for step, data in (("dictionary.describe", report.llm["step_report"]),
                               ("dictionary.examples", report.llm["examples"]["step_report"])):
                print(f"- {step}: {data['requests']} requests, {data['failed']} failed "
                      f"{data['failed_by_reason']}; {data['values']} values, "
                      f"{data['accepted']} accepted, {data['rejected']} rejected "
                      f"{data['rejected_by_reason']}")
            ex = report.llm["examples"]
            print(f"- added to the dictionary: {ex['added']}; disputed seed variants: "
                  f"{ex['disputed_seed_variants']}")
            cov = report.coverage
            print("- positives/negatives per label: " + ", ".join(f"{c['key']} {c['positives']}/{c['negatives']}" for c in cov))
            print(f"- labels with 5 positives and 5 negatives: "
                  f"{sum(c['has_examples'] for c in cov)} of {len(cov)}")
            shown = [k for k in args.show if k in d.entries]
            if shown:
                sub = dataclasses.replace(d, entries={k: d.entries[k] for k in shown})
                print(sub.to_markdown(len(shown)))
            print()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
