"""Re-apply the dictionary gates to the answers a live run left in the cache.

    .venv/bin/python bench/llm_gate_replay.py --storage-root DIR --sources a b \\
        [--catalog assets/catalog.shared.yaml] [--model smollm2-135m] [--max-tokens 256]

Runs ``dictionary.describe`` in replay mode (no endpoint: every answer comes from
``DIR/llm_cache``) with the settings of the live run, so the cache keys match, and prints
per source the values the LLM wrote, how many the gates accept, the rejections by reason,
and the accepted values themselves. Use it after changing the gates, to see what they make
of the same answers.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--storage-root", required=True)
    parser.add_argument("--sources", nargs="+", required=True)
    parser.add_argument("--catalog", default=str(ROOT / "assets" / "catalog.shared.yaml"))
    parser.add_argument("--model", default="smollm2-135m")
    parser.add_argument("--max-tokens", type=int, default=256)
    parser.add_argument("--show", type=int, default=12, help="accepted values shown per source")
    args = parser.parse_args()
    os.environ.setdefault("HUM_SHARED_DATA", str(ROOT.parent / "shared" / "data"))
    from hum_dagster.llm.client import ClientConfig, OpenAIRunner
    from hum_dagster.operations.plan import source_dictionary
    from hum_dagster.readers import read_source
    from hum_dagster.readers.catalog import load_catalog

    entries = {e.name: e for e in load_catalog(args.catalog)}
    config = ClientConfig(
        model=args.model,
        base_url="http://replay.invalid/v1",
        api_key_env="",
        max_tokens=args.max_tokens,
        check_model="off",
    )
    total_values = total_accepted = 0
    reasons: Counter[str] = Counter()
    for name in args.sources:
        entry = entries[name]
        result = read_source(entry)
        runner = OpenAIRunner(config, str(Path(args.storage_root) / "llm_cache"), "replay")
        dictionary, report = source_dictionary(entry, result, runner)
        step = report.llm["step_report"]
        total_values += step["values"]
        total_accepted += step["accepted"]
        reasons.update(step["rejected_by_reason"])
        share = step["accepted"] / step["values"] if step["values"] else 0.0
        print(
            f"{name}: {step['requests']} requests ({step['cached']} from the cache, "
            f"{step['failed']} missing), {step['values']} values, {step['accepted']} accepted "
            f"({share:.0%}); rejected {dict(sorted(step['rejected_by_reason'].items()))}"
        )
        shown = 0
        for key, e in sorted(dictionary.entries.items()):
            for kind, texts in (("description", e.descriptions), ("synonym", e.variants)):
                for t in texts:
                    if t.provenance.startswith("llm:") and shown < args.show:
                        print(f"    {key} {kind}: {t.value[:100]}")
                        shown += 1
    share = total_accepted / total_values if total_values else 0.0
    print(
        f"all: {total_values} values, {total_accepted} accepted ({share:.0%}); rejected "
        f"{dict(sorted(reasons.items()))}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
