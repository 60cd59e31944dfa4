"""The Table-1 report: the paper's layout, Markdown a parser reads, the chart, the checks."""

from __future__ import annotations

import base64

from hum_dagster.evaluation.report import (
    BELOW_BASE_CHECK,
    chart_figure,
    chart_markdown,
    chart_png,
    comparison_problems,
    parse_markdown_table,
    result_rows,
    table_one,
)


def res(model, bench, family, style, headline, failures=None, records=100):
    return {"model": model, "benchmark": bench, "family": family, "style": style,
            "headline": headline, "failure_rates": failures or dict.fromkeys(headline, 0.1),
            "records": dict.fromkeys(headline, records)}


RESULTS = [
    res("base", "fewrel", "FewRel", "B", {"re_f1": 10.0}, records=300),
    res("base", "fewrel", "FewRel", "C", {"re_f1": 20.0}, records=300),
    res("tuned", "fewrel", "FewRel", "B", {"re_f1": 30.0}, records=300),
    res("tuned", "fewrel", "FewRel", "C", {"re_f1": 15.0}, records=300),
    res("tuned", "imdb", "IMDB", "B", {"accuracy": 80.0}, records=1000),
    res("base", "ee_law", "CCF Law", "B", {"trigger_f1": 5.0, "argument_f1": 2.0}, records=6),
    res("base", "crossner_politics", "CrossNER", "B", {"ner_f1": 40.0}, {"ner_f1": 0.75}, records=651),
]


def test_table_one_is_the_papers_layout_and_valid_markdown():
    markdown, averages = table_one(result_rows(RESULTS), "strict")
    assert "mode `strict`" in markdown.split("\n\n")[0]
    table = parse_markdown_table(markdown)
    assert len({len(line) for line in table}) == 1  # header, rule and every line alike
    header = table[0]
    # paper order: CrossNER, FewRel, CCF Law trigger then argument, then IMDB; B before C
    assert header == ["model", "crossner_politics F1 (B)", "fewrel F1 (B)", "fewrel F1 (C)",
                      "ee_law Trigger F1 (B)", "ee_law Argument F1 (B)", "imdb Acc (B)",
                      "Avg B", "Avg C"]
    assert set(table[1]) == {"---"}
    assert table[2] == ["records", "651", "300", "300", "6", "6", "1000", "", ""]
    base, base_failures, tuned, tuned_failures = table[3:7]
    assert base == ["base", "40.00", "10.00", "20.00", "5.00", "2.00", "–", "14.25", "20.00"]
    assert base_failures[0] == "↳ parse failures" and base_failures[1] == "75%"
    assert tuned[0] == "tuned" and tuned[-2:] == ["55.00", "15.00"]
    assert tuned_failures[1] == "–" and tuned_failures[2] == "10%"
    assert averages["base"]["B"] == 14.25 and averages["tuned"]["C"] == 15.0
    assert averages["base"]["parse_failure_rate_B"] == (0.75 + 0.1 * 3) / 4


def test_markdown_cells_with_pipes_stay_one_cell():
    rows = result_rows([res("a|b", "fewrel", "FewRel", "B", {"re_f1": 1.0})])
    table = parse_markdown_table(table_one(rows)[0])
    assert len({len(line) for line in table}) == 1 and table[3][0] == "a|b"


def test_chart_is_on_a_0_to_100_axis_with_labelled_bars():
    rows = result_rows(RESULTS)
    fig = chart_figure(rows)
    ax = fig.axes[0]
    assert ax.get_ylim() == (0.0, 100.0)
    labels = [t.get_text() for t in ax.texts]
    assert {"10.0", "30.0", "80.0", "40.0"} <= set(labels)
    assert labels.count("–") == 4 and "0.0" not in labels  # missing scores are not zeros
    png = chart_png(rows)
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    md = chart_markdown(png)
    assert md.startswith("![Table 1 chart](data:image/png;base64,")
    assert base64.b64decode(md.split(",", 1)[1].rstrip(")")) == png


def _cell(model, value, rate=0.0, style="B"):
    return {"model": model, "benchmark": "fewrel", "metric": "re_f1", "style": style,
            "value": value, "parse_failure_rate": rate}


def test_comparison_warns_below_base_and_no_signal():
    bases = {"tuned": "base"}
    assert comparison_problems([_cell("base", 10), _cell("tuned", 12)], bases) == []
    worse = comparison_problems([_cell("base", 10), _cell("tuned", 8)], bases)
    assert [p.reason for p in worse] == ["below base: 8.00 < 10.00"]
    assert worse[0].check == BELOW_BASE_CHECK and "fewrel re_f1 (B)" in worse[0].record
    zero = comparison_problems([_cell("base", 0), _cell("tuned", 0)], bases)
    assert [p.reason for p in zero] == ["no signal: both score 0"]
    unreadable = comparison_problems([_cell("base", 5, 0.9), _cell("tuned", 6, 0.2)], bases)
    assert unreadable[0].reason.startswith("no signal: 90% of generations unparsable")
    assert comparison_problems([_cell("base", 5, 0.9), _cell("tuned", 6)], bases,
                               failure_threshold=0.95) == []
    nothing = comparison_problems([_cell("base", 5)], bases)
    assert nothing[0].reason.startswith("no signal: no fine-tuned model")
