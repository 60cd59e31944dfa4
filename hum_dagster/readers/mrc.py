"""Reading comprehension: C3 multiple choice and SQuAD/CMRC extractive JSON.

- ``c3``: ``[[[context lines], [{"question", "choice": [...], "answer"}], id], ...]``;
  one record per question, text = the context lines joined by newlines; an answer
  that is not one of the choices is quarantined.
- ``squad``: ``{"data": [{"paragraphs": [{"context", "qas": [{"id", "question",
  "answers": [{"text", "answer_start"}]}]}]}]}``; one record per question, options
  empty, answers the distinct answer texts (none for unanswerable questions); an
  answer that does not occur in the context, or not at its ``answer_start``, is
  quarantined; ``is_impossible`` must be a JSON boolean (the string ``"false"`` is not).
"""

from __future__ import annotations

from typing import Any

from hum_dagster.readers import register
from hum_dagster.readers.common import (
    Collector,
    base_name,
    gc_paused,
    json_type,
    load_json_records,
    own_repeated_key,
    raw_json,
    repeated_key,
    repeated_key_reason,
)
from hum_dagster.records import MRC, LabelSchema, ReadResult, SourceError


class _Bad(ValueError):
    pass


def _str_list(value: Any, what: str) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise _Bad(f"'{what}' must be a list of strings")
    return value


@register("c3", tasks=(MRC,))
@gc_paused
def read_c3(entry) -> ReadResult:
    path = entry.resolve()
    data, repeats = load_json_records(path)
    if not isinstance(data, list):
        raise SourceError(path, f"expected a JSON array of C3 documents, got {json_type(data)}", 1)
    name = base_name(path)
    out = Collector(entry)
    for doc_index, doc in enumerate(data):
        doc_origin = f"{name}#{doc_index}"
        try:
            if not isinstance(doc, list) or len(doc) < 2:
                raise _Bad("expected [context, questions, id]")
            context = _str_list(doc[0], "context")
            questions = doc[1]
            if not isinstance(questions, list):
                raise _Bad("questions must be a list")
        except _Bad as exc:
            out.reject(doc_origin, str(exc), raw_json(doc))
            continue
        text = "\n".join(context)
        for q_index, qa in enumerate(questions):
            origin = f"{doc_origin}.{q_index}"
            try:
                if not isinstance(qa, dict):
                    raise _Bad(f"question must be a JSON object, got {json_type(qa)}")
                key = repeated_key(qa) if repeats else None
                if key is not None:
                    raise _Bad(repeated_key_reason(key))
                question = qa.get("question")
                if not isinstance(question, str) or not question.strip():
                    raise _Bad("empty question")
                options = _str_list(qa.get("choice"), "choice")
                answer = qa.get("answer")
                if answer is None:
                    raise _Bad("missing field 'answer'")
                if not isinstance(answer, str) or not answer:
                    raise _Bad(f"'answer' must be a non-empty string, got {json_type(answer)}")
                if answer not in options:
                    raise _Bad(f"answer {answer!r} is not one of the choices")
            except _Bad as exc:
                out.reject(origin, str(exc), raw_json(qa))
                continue
            gold = {"question": question, "options": list(options), "answers": [answer]}
            out.add(text, gold, origin)
    return out.result(LabelSchema(), [path])


@register("squad", tasks=(MRC,))
@gc_paused
def read_squad(entry) -> ReadResult:
    path = entry.resolve()
    data, repeats = load_json_records(path)
    if not isinstance(data, dict) or not isinstance(data.get("data"), list):
        raise SourceError(path, "expected a JSON object with a 'data' list (SQuAD format)", 1)
    name = base_name(path)
    out = Collector(entry)
    for a_index, article in enumerate(data["data"]):
        paragraphs = article.get("paragraphs") if isinstance(article, dict) else None
        key = own_repeated_key(article)
        if key is not None:
            out.reject(f"{name}#{a_index}", repeated_key_reason(key), raw_json(article))
            continue
        if not isinstance(paragraphs, list):
            out.reject(
                f"{name}#{a_index}", "article without a 'paragraphs' list", raw_json(article)
            )
            continue
        for p_index, para in enumerate(paragraphs):
            p_origin = f"{name}#{a_index}.{p_index}"
            context = para.get("context") if isinstance(para, dict) else None
            qas = para.get("qas") if isinstance(para, dict) else None
            if not isinstance(context, str) or not isinstance(qas, list):
                out.reject(p_origin, "paragraph without 'context' and 'qas'", raw_json(para))
                continue
            key = own_repeated_key(para)
            if key is not None:
                out.reject(p_origin, repeated_key_reason(key), raw_json(para))
                continue
            for q_index, qa in enumerate(qas):
                qid = qa.get("id") if isinstance(qa, dict) else None
                origin = (
                    f"{name}#{qid}" if isinstance(qid, str) and qid else f"{p_origin}.{q_index}"
                )
                try:
                    key = repeated_key(qa) if repeats else None
                    if key is not None:
                        raise _Bad(repeated_key_reason(key))
                    gold = _squad_gold(context, qa)
                except _Bad as exc:
                    out.reject(origin, str(exc), raw_json(qa))
                    continue
                out.add(context, gold, origin)
    return out.result(LabelSchema(), [path])


def _squad_gold(context: str, qa: Any) -> dict[str, Any]:
    if not isinstance(qa, dict):
        raise _Bad(f"question must be a JSON object, got {json_type(qa)}")
    question = qa.get("question")
    if not isinstance(question, str) or not question.strip():
        raise _Bad("empty question")
    raw_answers = qa.get("answers")
    if raw_answers is None:
        raw_answers = []
    if not isinstance(raw_answers, list):
        raise _Bad(f"'answers' must be a list, got {json_type(raw_answers)}")
    impossible = qa.get("is_impossible", False)
    if not isinstance(impossible, bool):
        raise _Bad(f"'is_impossible' must be true or false, got {json_type(impossible)} {impossible!r}")
    if impossible and raw_answers:
        raise _Bad("'is_impossible' is true but the question has answers")
    answers: list[str] = []
    for ans in raw_answers:
        if not isinstance(ans, dict):
            raise _Bad(f"answer must be a JSON object, got {json_type(ans)}")
        text = ans.get("text")
        if not isinstance(text, str) or not text:
            raise _Bad("answer without 'text'" if text is None else "answer 'text' must be a non-empty string")
        if text not in context:
            raise _Bad(f"answer {text!r} not found in context")
        start = ans.get("answer_start")
        if start is not None:
            if isinstance(start, bool) or not isinstance(start, int):
                raise _Bad(f"answer {text!r}: 'answer_start' must be an integer, got {json_type(start)}")
            if context[start : start + len(text)] != text:
                raise _Bad(f"answer {text!r} is not in the context at answer_start {start}")
        if text not in answers:
            answers.append(text)
    return {"question": question, "options": [], "answers": answers}
