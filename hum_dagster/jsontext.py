"""JSON text as ``json.dumps(value, ensure_ascii=False)`` writes it, made by msgspec.

msgspec escapes strings byte for byte as ``json.dumps`` does; ``msgspec.json.format``
with ``indent=0`` puts in json.dumps's ``", "`` and ``": "`` separators. About 3-4x
faster than ``json.dumps`` on the corpus's JSON lines (measured on 100,000 exported
rows, same bytes). Values are JSON-able Python values: strings, ints, lists, dicts.
Floats are not the same bytes: msgspec writes those that Python writes with an exponent
in another form (``1e-05`` as ``0.00001``, ``1e+16`` as ``1e16``) and NaN as ``null``;
the export's and ``hum convert``'s rows hold none.
``tests/cli/test_convert_engine.py`` checks it against ``json.dumps``.
"""

from __future__ import annotations

from typing import Any

import msgspec

_encode = msgspec.json.encode
_format = msgspec.json.format


def json_bytes(value: Any) -> bytes:
    """``json.dumps(value, ensure_ascii=False).encode("utf-8")``."""
    return _format(_encode(value), indent=0)
