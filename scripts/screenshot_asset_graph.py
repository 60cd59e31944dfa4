"""Screenshots of the Dagster UI: the asset graph for the README (docs/asset_graph.png),
or any page of an instance `hum run` used.

Needs Debian's chromium (`apt-get install -y chromium`). Starts `hum dev` on loopback (on a
throwaway `HUM_HOME`, or the one given), opens each page in headless Chromium through the
DevTools protocol, dismisses the first-visit dialog, and saves the screenshots.

    .venv/bin/python scripts/screenshot_asset_graph.py
    .venv/bin/python scripts/screenshot_asset_graph.py --hum-home .hum \
        --page /runs/b/<backfill id>?tab=partitions backfill.png --page /overview/activity/timeline timeline.png
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import websockets

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "docs" / "asset_graph.png"


def wait_for(url: str, seconds: float = 180) -> None:
    deadline = time.time() + seconds
    while True:
        try:
            urllib.request.urlopen(url, timeout=2)
            return
        except OSError:
            if time.time() > deadline:
                raise
            time.sleep(1)


async def shoot(debug_port: int, page_url: str, wait: float = 12, height: int = 900,
                script: str | None = None) -> bytes:
    targets = json.loads(urllib.request.urlopen(f"http://127.0.0.1:{debug_port}/json").read())
    ws_url = next(t["webSocketDebuggerUrl"] for t in targets if t["type"] == "page")
    async with websockets.connect(ws_url, max_size=50_000_000) as ws:
        ids = iter(range(1, 10_000))

        async def call(method: str, **params):
            i = next(ids)
            await ws.send(json.dumps({"id": i, "method": method, "params": params}))
            while True:
                message = json.loads(await ws.recv())
                if message.get("id") == i:
                    return message.get("result", {})

        await call("Emulation.setDeviceMetricsOverride", width=1600, height=height,
                   deviceScaleFactor=1, mobile=False)
        await call("Page.navigate", url=page_url)
        await asyncio.sleep(wait)
        skip = ("[...document.querySelectorAll('button')]"
                ".find(b => b.textContent.trim() === 'Skip')?.click()")
        await call("Runtime.evaluate", expression=skip)
        await asyncio.sleep(4)
        if script:  # e.g. open a metadata entry's "[Show Markdown]" dialog
            result = await call("Runtime.evaluate", expression=script)
            print(f"script: {result.get('result', {}).get('value')}", file=sys.stderr)
            await asyncio.sleep(4)
        shot = await call("Page.captureScreenshot", format="png")
        return base64.b64decode(shot["data"])


def main() -> None:
    import argparse

    parser = argparse.ArgumentParser()
    parser.add_argument("--hum-home", help="an existing HUM_HOME (default: a throwaway one)")
    parser.add_argument("--page", nargs=2, action="append", metavar=("PATH", "PNG"),
                        help="a UI path and the file to write (default: the asset graph)")
    parser.add_argument("--wait", type=float, default=12, help="seconds a page gets to load")
    parser.add_argument("--height", type=int, default=900,
                        help="viewport height in pixels (a tall one shows long metadata whole)")
    parser.add_argument("--js", help="JavaScript run on each page before its screenshot")
    args = parser.parse_args()
    pages = args.page or [("/asset-groups", str(OUT))]
    home = Path(args.hum_home).resolve() if args.hum_home else Path(tempfile.mkdtemp(prefix="hum-shot-"))
    port, debug_port = 3377, 9223
    env = {k: v for k, v in os.environ.items() if not k.startswith("DAGSTER_")}
    env["HUM_HOME"] = str(home)
    dev = subprocess.Popen(
        [sys.executable, "-m", "hum_dagster.cli.main", "dev", "-p", str(port), "-h", "127.0.0.1"],
        cwd=home, env=env, start_new_session=True,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    profile = tempfile.mkdtemp(prefix="hum-chromium-")
    browser = subprocess.Popen(
        ["chromium", "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic",
         f"--user-data-dir={profile}", f"--remote-debugging-port={debug_port}", "about:blank"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )
    try:
        wait_for(f"http://127.0.0.1:{port}/server_info")
        wait_for(f"http://127.0.0.1:{debug_port}/json/version", 30)
        for path, target in pages:
            png = asyncio.run(shoot(debug_port, f"http://127.0.0.1:{port}{path}", args.wait, args.height, args.js))
            Path(target).write_bytes(png)
            print(f"wrote {target} ({len(png):,} bytes)")
    finally:
        for proc in (browser, dev):
            os.killpg(proc.pid, signal.SIGTERM)
        shutil.rmtree(profile, ignore_errors=True)
        if not args.hum_home:
            shutil.rmtree(home, ignore_errors=True)


if __name__ == "__main__":
    main()
