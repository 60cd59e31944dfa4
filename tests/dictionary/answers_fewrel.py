"""Hand-written LLM answers for the FewRel sample (``re_en_fewrel``), shared by the
examples tests and the demonstration (``scripts``-free: ``python -c``): plausible ones
(what a good model writes) and junk ones (what the gates must refuse, one reason each)."""

from __future__ import annotations

import json


def pair(s: str, o: str) -> dict[str, str]:
    return {"subject": s, "object": o}


DESCRIBE = {
    "spouse": {
        "descriptions": ["The subject is married to the object: a husband, wife or spouse."],
        "synonyms": ["wedded partner", "consort"],
    },
    "author": {
        "descriptions": [
            "The object is the writer who created the written work named by the subject."
        ],
        "synonyms": ["authored by", "penned by"],
    },
    "sport": {
        "descriptions": ["The object is the sport that the subject, a person or team, plays."],
        "synonyms": ["plays sport", "athletics"],
    },
    "located in the administrative territorial entity": {
        "descriptions": [
            "The subject lies within the administrative territorial entity named by the object."
        ],
        "synonyms": ["situated in the administrative area"],
    },
}

PLAUSIBLE = {
    "spouse": {
        "positives": [
            {"text": "In 1962 the actress Mara Lind married the composer Oskar Bell.",
             "value": pair("Mara Lind", "Oskar Bell")},
            {"text": "The novelist Ines Varga lived in Lisbon with her wife, the photographer "
             "Dora Kess.", "value": pair("Ines Varga", "Dora Kess")},
            {"text": "Tomas Holm was married to the singer Ellen Kray until his death.",
             "value": pair("Tomas Holm", "Ellen Kray")},
        ],
        "negatives": [
            {"text": "Mara Lind's brother Erik Lind gave a speech at the wedding.",
             "value": pair("Mara Lind", "Erik Lind"), "reason": "a brother, not a spouse"},
            {"text": "Oskar Bell was engaged to Lena Marr, but they never married.",
             "value": pair("Oskar Bell", "Lena Marr"), "reason": "engaged, never married"},
            {"text": "Ines Varga's daughter Sofia Varga also became a photographer.",
             "value": pair("Ines Varga", "Sofia Varga"), "reason": "a daughter, not a spouse"},
        ],
        "candidates": [pair("Mara Lind", "Oskar Bell"), pair("Tomas Holm", "Ellen Kray")],
        "variants": [
            {"name": "married to", "keeps_meaning": True},
            {"name": "wedded partner", "keeps_meaning": True},
            {"name": "consort", "keeps_meaning": False},
        ],
    },
    "author": {
        "positives": [
            {"text": "The Glass Harbour, a novel by Rita Ocampo, won the prize in 2004.",
             "value": pair("The Glass Harbour", "Rita Ocampo")},
            {"text": "Winter Letters was written by the poet Anand Rao.",
             "value": pair("Winter Letters", "Anand Rao")},
        ],
        "negatives": [
            {"text": "The Glass Harbour was translated into German by Petra Lenz.",
             "value": pair("The Glass Harbour", "Petra Lenz"),
             "reason": "the translator, not the author"},
            {"text": "Winter Letters was written by the poet Anand Rao.",
             "value": pair("Anand Rao", "Winter Letters"),
             "reason": "subject and object swapped: the work comes first"},
        ],
        "candidates": [pair("Winter Letters", "Anand Rao")],
        "variants": [
            {"name": "written by", "keeps_meaning": True},
            {"name": "authored by", "keeps_meaning": True},
            {"name": "penned by", "keeps_meaning": True},
        ],
    },
    "sport": {
        "positives": [
            {"text": "Lena Brandt won two Olympic medals in rowing.",
             "value": pair("Lena Brandt", "rowing")},
        ],
        "negatives": [
            {"text": "Lena Brandt watched a tennis match after the race.",
             "value": pair("Lena Brandt", "tennis"), "reason": "watched, not played"},
        ],
        "candidates": [pair("Lena Brandt", "rowing")],
        "variants": [
            {"name": "sport played", "keeps_meaning": True},
            {"name": "plays sport", "keeps_meaning": True},
            {"name": "athletics", "keeps_meaning": False},
        ],
    },
    "located in the administrative territorial entity": {
        "positives": [
            {"text": "The village of Marsden lies in the district of Kirklees.",
             "value": pair("Marsden", "Kirklees")},
        ],
        "negatives": [
            {"text": "The village of Marsden lies in the district of Kirklees.",
             "value": pair("Marsden", "district of Kirklees"),
             "reason": 'wrong boundary: the span takes in "district of"'},
        ],
        "candidates": [pair("Marsden", "Kirklees")],
        "variants": [
            {"name": "located in the administrative unit", "keeps_meaning": True},
            {"name": "situated in the administrative area", "keeps_meaning": True},
        ],
    },
}

# One bad value per rule, the reason in the comment above it.
JUNK = {
    "spouse": {
        "positives": [
            # span_not_in_text
            {"text": "They married in 1931.", "value": pair("Clara Webb", "Jonah Hale")},
            # span_of_input: an input text of the source copied out
            {"text": "Clara Webb married the painter Jonah Hale in a small ceremony in 1931 .",
             "value": pair("Clara Webb", "Jonah Hale")},
            # other_label_value: an author pair of the data, never a spouse
            {"text": "Paper Lanterns and Hana Sato were mentioned.",
             "value": pair("Paper Lanterns", "Hana Sato")},
            # placeholder
            {"text": "example", "value": pair("a", "b")},
        ],
        "negatives": [
            # swapped_symmetric_pair: spouse is symmetric, the swapped pair is the same fact
            {"text": "Jonah Hale and Clara Webb wed in 1931.",
             "value": pair("Jonah Hale", "Clara Webb"), "reason": "reversed"},
            # negative_is_gold
            {"text": "Ruth Adler's husband was Karl Adler.",
             "value": pair("Ruth Adler", "Karl Adler"), "reason": "not married"},
            # no_reason
            {"text": "Mara Lind met Paul Ost.", "value": pair("Mara Lind", "Paul Ost")},
            # span_not_in_text (a negative's value must occur in its text too)
            {"text": "Mara Lind met a friend.", "value": pair("Mara Lind", "Paul Ost"),
             "reason": "a friend"},
        ],
        "candidates": [
            "The subject is married to the object.",  # empty_value: a relation value is a pair
            pair("Paper Lanterns", "Hana Sato"),  # other_label_value
        ],
        # meaning_unconfirmed: the LLM synonyms "wedded partner", "consort" are not judged
        "variants": [{"name": "married to", "keeps_meaning": True}],
    },
    "author": {
        "positives": [
            # wrong_language
            {"text": "《山月集》是诗人沈青禾的第一部诗集。", "value": pair("山月集", "沈青禾")},
            # json_or_schema_echo
            {"text": '{"text": "a", "value": "b"}', "value": pair("a", "b")},
            # empty_value: a relation example without a pair
            {"text": "Winter Letters was written by Anand Rao.", "value": "Anand Rao"},
        ],
        "negatives": [
            # too_long
            {"text": "Long " * 90 + "Anand Rao wrote Winter Letters.",
             "value": pair("Winter Letters", "Anand Rao"), "reason": "too long"},
        ],
        "candidates": [],
        "variants": [
            {"name": "authored by", "keeps_meaning": False},  # meaning_changed
            {"name": "written by", "keeps_meaning": False},  # a seed: kept, reported
        ],
    },
}


def by_prompt(examples: dict, describe: dict = DESCRIBE) -> dict:
    """A loopback-server behaviour answering each label's two prompts its own way (the
    describe prompt says "Known descriptions:", the examples prompt "Descriptions:")."""
    answers = [[f'Label: "{k}"\nKnown descriptions:', json.dumps(v)] for k, v in describe.items()]
    answers += [[f'Label: "{k}"\nDescriptions:', json.dumps(v)] for k, v in examples.items()]
    return {"kind": "by_prompt", "answers": answers}
