"""Charts for people: matplotlib figures that render Chinese labels, as PNG bytes and as
Markdown images the Dagster UI shows inline.

Every chart of the project (corpus statistics, loss curves, the evaluation report) is
drawn through :func:`new_figure`, so they share one look and one font setup:

- matplotlib's Agg backend (no display) and its object API (no global pyplot state);
  draw inside ``with new_figure(...) as fig:``;
- DejaVu Sans first, then Noto Sans CJK SC for the glyphs DejaVu lacks. Noto Sans CJK
  comes from the ``manimgx-fonts-cjk`` package (SIL Open Font License), a dependency of
  the project, so labels such as ``人物`` render on any machine. Without it the text
  still renders, with boxes for CJK glyphs (and matplotlib warns).

:func:`markdown_image` wraps PNG bytes as a ``data:`` URI in Markdown, for
``dg.MetadataValue.md``: the image then shows in the UI (the entry's "Show Markdown" on the
asset's Events page opens it; checked with ``scripts/screenshot_asset_graph.py --js``), not
only as a path.
No Dagster imports.
"""

from __future__ import annotations

import base64
import io
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache
from typing import Any

CJK_FAMILY = "Noto Sans CJK SC"
FONT_FAMILIES = ["DejaVu Sans", CJK_FAMILY]


@cache
def cjk_font_path() -> str | None:
    """The Noto Sans CJK collection registered with matplotlib, or None without it."""
    try:
        from importlib.resources import files

        path = files("manimgx_fonts_cjk") / "NotoSansCJK-VF.otf.ttc"
    except ModuleNotFoundError:
        return None
    if not path.is_file():
        return None
    from matplotlib import font_manager

    font_manager.fontManager.addfont(str(path))
    return str(path)


@contextmanager
def new_figure(figsize: tuple[float, float], dpi: int = 100) -> Iterator[Any]:
    """A matplotlib Figure on the Agg backend whose text falls back to Noto Sans CJK.

    Draw inside the ``with`` block: text takes its font family when it is created, and
    the family is set for the block only, not for the whole process."""
    import matplotlib

    matplotlib.use("Agg", force=True)
    from matplotlib.figure import Figure

    families = FONT_FAMILIES if cjk_font_path() else FONT_FAMILIES[:1]
    with matplotlib.rc_context({"font.family": families}):
        yield Figure(figsize=figsize, dpi=dpi)


def png_bytes(fig: Any) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return buf.getvalue()


def markdown_image(png: bytes, alt: str) -> str:
    """``![alt](data:image/png;base64,...)``: the chart inline in Markdown metadata."""
    encoded = base64.b64encode(png).decode("ascii")
    return f"![{alt}](data:image/png;base64,{encoded})"
