"""Compound-instruction throughput per guideline strategy on CrossNER politics train
(needs ../shared/data). Run: .venv/bin/python bench/guidelines_throughput.py"""

import tempfile
import time

import yaml

from hum_dagster.dictionary import build_dictionary, load_seed_book, select_seeds
from hum_dagster.paths import shared_data_dir
from hum_dagster.readers import read_source
from hum_dagster.readers.catalog import load_catalog
from hum_dagster.synthesis.basic import BasicConfig, synthesize_basic
from hum_dagster.synthesis.guidelines import GUIDELINE_STRATEGIES, run_guidelines

cat = tempfile.NamedTemporaryFile("w", suffix=".yaml", delete=False)  # noqa: SIM115
yaml.safe_dump(
    {
        "sources": [
            {
                "name": "crossner_politics",
                "task": "NER",
                "language": "en",
                "format": "conll",
                "location": str(shared_data_dir() / "crossner/politics/train.txt"),
                "options": {"scheme": "BIO"},
            }
        ]
    },
    cat,
)
cat.close()
e = load_catalog(cat.name)[0]
r = read_source(e)
t = time.perf_counter()
d, rep = build_dictionary(
    e.name, e.task, e.language, r.records, r.schema, select_seeds(load_seed_book(), e.name)
)
print(
    "records",
    len(r.records),
    "dictionary s",
    round(time.perf_counter() - t, 3),
    rep.coverage_summary,
)
rows = list(synthesize_basic(r.records, r.schema, BasicConfig(mode="train")))
rows = rows * (60000 // len(rows) + 1)
for s in GUIDELINE_STRATEGIES:
    t = time.perf_counter()
    out, rp = run_guidelines(rows, d, s)
    dt = time.perf_counter() - t
    print(s, len(rows), rp.rows_out, f"{len(rows) / dt:,.0f} rows/s")
