"""Charts render Chinese labels and travel inline as Markdown images."""

import base64
import warnings

from hum_dagster.corpus.charts import chart_png
from hum_dagster.plotting import cjk_font_path, markdown_image, new_figure, png_bytes


def _draw(labels: list[str]) -> tuple[bytes, list[str]]:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with new_figure((3, 2)) as fig:
            ax = fig.subplots()
            ax.barh(labels, list(range(1, len(labels) + 1)))
            ax.set_title("实体类型 entity types")
            png = png_bytes(fig)
    return png, [str(w.message) for w in caught if "missing from font" in str(w.message)]


def test_cjk_labels_render_with_the_shipped_font():
    assert cjk_font_path() is not None, "manimgx-fonts-cjk (a project dependency) is missing"
    png, missing = _draw(["人物", "地点", "organisation"])
    assert png[:4] == b"\x89PNG"
    assert missing == []  # matplotlib warns for every glyph no font of the figure has


def test_a_glyph_no_font_has_is_reported():
    # the check above can fail: a character outside DejaVu and Noto Sans CJK warns
    _, missing = _draw(["\U0001fa90"])  # RINGED PLANET, in neither font
    assert missing


def test_corpus_chart_draws_chinese_task_and_label_names():
    stats = {
        "rows": 3,
        "by_task": {"NER": 2, "RE": 1},
        "by_strategy": {"basic": 2, "description": 1},
        "by_variant": {"要点列表": 1},
        "by_language": {"zh": 3},
        "input_tokens": {"p50": 5, "p99": 9, "histogram": [["0-64", 3], ["64-128", 0]]},
        "output_tokens": {},
    }
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        png = chart_png(stats, "语料 corpus")
    assert png[:4] == b"\x89PNG"
    assert not [w for w in caught if "missing from font" in str(w.message)]


def test_markdown_image_embeds_the_png():
    png = b"\x89PNG fake bytes"
    md = markdown_image(png, "loss")
    assert md.startswith("![loss](data:image/png;base64,")
    assert base64.b64decode(md.split(",", 1)[1].rstrip(")")) == png
