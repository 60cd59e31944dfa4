"""The Table-1 report: layout, averages, the below-base comparison, the chart."""

from __future__ import annotations

from hum_dagster.evaluation.report import below_base, chart_png, result_rows, table_one

RESULTS = [
    {"model": "base", "benchmark": "fewrel", "style": "B", "headline": {"re_f1": 10.0}},
    {"model": "base", "benchmark": "fewrel", "style": "C", "headline": {"re_f1": 20.0}},
    {"model": "tuned", "benchmark": "fewrel", "style": "B", "headline": {"re_f1": 30.0}},
    {"model": "tuned", "benchmark": "fewrel", "style": "C", "headline": {"re_f1": 15.0}},
    {"model": "tuned", "benchmark": "imdb", "style": "B", "headline": {"accuracy": 80.0}},
]


def test_table_one_has_a_line_per_model_and_style_averages():
    markdown, averages = table_one(result_rows(RESULTS))
    lines = markdown.splitlines()
    assert lines[0].startswith("| model | fewrel re_f1 (B) | fewrel re_f1 (C) | imdb accuracy (B)")
    assert len(lines) == 4  # header, rule, two models
    assert "| base | 10.00 | 20.00 | – |" in markdown
    assert averages["base"] == {"B": 10.0, "C": 20.0, "all": 15.0}
    assert averages["tuned"]["B"] == 55.0 and averages["tuned"]["C"] == 15.0


def test_below_base_names_each_cell_where_the_tuned_model_is_worse():
    worse = below_base(result_rows(RESULTS), {"tuned": "base"})
    assert worse == [{"model": "tuned", "base": "base", "benchmark": "fewrel", "metric": "re_f1",
                      "style": "C", "value": 15.0, "base_value": 20.0}]
    assert below_base(result_rows(RESULTS), {}) == []


def test_chart_is_a_png():
    png = chart_png(result_rows(RESULTS))
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 1000
