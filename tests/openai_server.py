"""A real OpenAI-compatible HTTP server on loopback, for tests and the benchmark.

It speaks ``GET /v1/models``, ``POST /v1/chat/completions``, ``POST /v1/files``,
``GET /v1/files/{id}/content``, ``POST /v1/batches`` and ``GET /v1/batches/{id}`` over
aiohttp, in a background thread with its own event loop (or as a process:
``python tests/openai_server.py --port 8000 --latency 0.1``).

By default it answers every chat request with a deterministic JSON echo of the prompt:
``{"echo": <last user message>, "seed": <seed sent>, "model": <model>}``. A test changes
that through the Python API: ``queue(*behaviours)`` sets what the next chat requests get,
in order (then the default again), ``default`` what every other one gets. Behaviours:

- ``{"kind": "ok"}``; ``{"kind": "content", "content": "..."}`` (any answer text)
- ``{"kind": "rate_limit", "retry_after": 0.5}`` (or ``"retry_after_ms": 300``): 429
- ``{"kind": "server_error"}``: 500
- ``{"kind": "slow", "delay": 2.0}``: the normal answer after a delay
- ``{"kind": "bad_json"}``: 200 whose answer text is not JSON
- ``{"kind": "malformed_body"}``: 200 whose HTTP body is not JSON at all
- ``{"kind": "drop"}``: the connection is closed without an answer
- ``{"kind": "simulate"}``: a simulated model, not a model: an answer of the shape the
  request's JSON schema asks for, written from the prompt (``simulated_answer``): for the
  describe-label prompt a description and a synonym naming the label, for the
  preference-rule prompt a rule and the sample's annotation as given. For filling a
  replay cache at scale (``bench/corpus_graph.py``): the answers exercise every path
  the real ones take (cache, gates, relabelling checks), their content means nothing
- ``{"kind": "by_prompt", "answers": [[text, content], ...], "otherwise": "..."}``: the
  content of the first pair whose text occurs in the last user message (else
  ``otherwise``, else the echo): one behaviour that answers each prompt its own way,
  e.g. junk for one label and a good answer for another

``models`` is the model list ``GET /v1/models`` answers (None: 404, a server without a
list, which is the default).

``latency`` delays every chat answer, ``headers`` is added to every chat answer (e.g.
``x-ratelimit-remaining-requests``), ``reject_json_schema`` answers 400 to a request with
``response_format.type == "json_schema"``. Every chat request is recorded in ``requests``
(path, parsed body, headers, arrival time). ``POST /_control`` with a JSON object sets
the same attributes from another process.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web


@dataclass
class Recorded:
    method: str
    path: str
    body: Any
    headers: dict[str, str]
    t: float  # time.monotonic() at arrival


@dataclass
class LoopbackOpenAI:
    host: str = "127.0.0.1"
    port: int = 0
    latency: float = 0.0
    default: dict[str, Any] = field(default_factory=lambda: {"kind": "ok"})
    headers: dict[str, str] = field(default_factory=dict)
    reject_json_schema: bool = False
    reject_status: int = 400  # 500 imitates llama-cpp-python's answer
    batch_polls_to_complete: int = 2  # GETs of a batch before it reports "completed"
    batch_fail_marker: str = "[[batch-fail]]"  # batch lines with this in a message fail
    record: bool = True
    models: list[str] | None = None  # GET /v1/models; None answers 404

    def __post_init__(self) -> None:
        self.requests: list[Recorded] = []
        self._queue: deque[dict[str, Any]] = deque()
        self._lock = threading.Lock()
        self._ids = itertools.count(1)
        self.files: dict[str, dict[str, Any]] = {}
        self.batches: dict[str, dict[str, Any]] = {}
        self._batch_polls: dict[str, int] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._runner: web.AppRunner | None = None
        self._thread: threading.Thread | None = None
        self.chat_count = 0
        self.in_flight = 0
        self.max_in_flight = 0  # most chat requests being answered at once

    # -- the Python API --------------------------------------------------------------

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}/v1"

    def queue(self, *behaviours: dict[str, Any] | str) -> None:
        with self._lock:
            for b in behaviours:
                self._queue.append({"kind": b} if isinstance(b, str) else dict(b))

    def reset(self) -> None:
        with self._lock:
            self.requests.clear()
            self._queue.clear()
            self.chat_count = 0
            self.max_in_flight = 0
        self.latency = 0.0
        self.default = {"kind": "ok"}
        self.headers = {}
        self.reject_json_schema = False
        self.reject_status = 400
        self.models = None

    def model_requests(self) -> list[Recorded]:
        with self._lock:
            return [r for r in self.requests if r.path.endswith("/models")]

    def chat_requests(self) -> list[Recorded]:
        with self._lock:
            return [r for r in self.requests if r.path.endswith("/chat/completions")]

    def start(self) -> LoopbackOpenAI:
        started = threading.Event()

        def serve() -> None:
            loop = asyncio.new_event_loop()
            self._loop = loop
            asyncio.set_event_loop(loop)
            loop.run_until_complete(self._start_site())
            started.set()
            loop.run_forever()
            loop.run_until_complete(self._runner.cleanup())
            loop.close()

        self._thread = threading.Thread(target=serve, name="fake-openai", daemon=True)
        self._thread.start()
        if not started.wait(10):
            raise RuntimeError("fake OpenAI server did not start")
        return self

    def stop(self) -> None:
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(10)
            self._loop = None

    def __enter__(self) -> LoopbackOpenAI:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- the HTTP side ---------------------------------------------------------------

    def app(self) -> web.Application:
        app = web.Application(client_max_size=256 * 1024**2)
        app.router.add_get("/v1/models", self._models)
        app.router.add_post("/v1/chat/completions", self._chat)
        app.router.add_post("/v1/files", self._upload)
        app.router.add_get("/v1/files/{file_id}/content", self._file_content)
        app.router.add_post("/v1/batches", self._create_batch)
        app.router.add_get("/v1/batches/{batch_id}", self._get_batch)
        app.router.add_post("/_control", self._control)
        return app

    async def _start_site(self) -> None:
        self._runner = web.AppRunner(self.app(), access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port, backlog=1024)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]

    def _record(self, request: web.Request, body: Any) -> None:
        if self.record:
            with self._lock:
                self.requests.append(
                    Recorded(
                        request.method, request.path, body, dict(request.headers), time.monotonic()
                    )
                )

    def _next_behaviour(self) -> dict[str, Any]:
        with self._lock:
            self.chat_count += 1
            return self._queue.popleft() if self._queue else dict(self.default)

    async def _models(self, request: web.Request) -> web.Response:
        self._record(request, None)
        if self.models is None:
            return _error(404, "this server has no model list")
        data = [{"id": m, "object": "model", "owned_by": "loopback"} for m in self.models]
        return web.json_response({"object": "list", "data": data})

    async def _chat(self, request: web.Request) -> web.StreamResponse:
        raw = await request.read()
        try:
            body = json.loads(raw)
        except ValueError:
            return _error(400, "request body is not JSON")
        self._record(request, body)
        self.in_flight += 1  # only the server's own loop touches these
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            return await self._answer(request, body)
        finally:
            self.in_flight -= 1

    async def _answer(self, request: web.Request, body: dict[str, Any]) -> web.StreamResponse:
        behaviour = self._next_behaviour()
        kind = behaviour.get("kind", "ok")
        if self.latency:
            await asyncio.sleep(self.latency)
        fmt = body.get("response_format") or {}
        if self.reject_json_schema and fmt.get("type") == "json_schema":
            return _error(
                self.reject_status,
                "response_format json_schema is not supported by this server",
                param="response_format",
            )
        if kind == "rate_limit":
            headers = {}
            if "retry_after_ms" in behaviour:
                headers["retry-after-ms"] = str(behaviour["retry_after_ms"])
            else:
                headers["retry-after"] = str(behaviour.get("retry_after", 1))
            return _error(429, "Rate limit reached", headers=headers, type_="rate_limit_error")
        if kind == "server_error":
            return _error(500, "The server had an error", type_="server_error")
        if kind == "drop":
            request.transport.close()
            raise asyncio.CancelledError  # aiohttp drops the connection without an answer
        if kind == "slow":
            await asyncio.sleep(float(behaviour.get("delay", 1.0)))
        if kind == "malformed_body":
            return web.Response(
                status=200, text='{"id": "x", "choices": [', content_type="application/json"
            )
        if kind == "bad_json":
            content = "Sure! Here it is: {not json at all"
        elif kind == "content":
            content = behaviour["content"]
        elif kind == "simulate":
            content = simulated_answer(body)
        elif kind == "by_prompt":
            prompt = last_user_message(body)
            found = [c for text, c in behaviour.get("answers", ()) if text in prompt]
            content = found[0] if found else behaviour.get("otherwise") or echo_content(body)
        else:
            content = echo_content(body)
        return web.json_response(completion(body, content), headers=self.headers)

    async def _upload(self, request: web.Request) -> web.Response:
        form = await request.post()
        upload = form["file"]
        data = upload.file.read()
        file_id = f"file-{next(self._ids)}"
        meta = {
            "id": file_id,
            "object": "file",
            "bytes": len(data),
            "created_at": int(time.time()),
            "filename": upload.filename,
            "purpose": form.get("purpose", ""),
            "status": "processed",
        }
        self.files[file_id] = {"meta": meta, "data": data}
        self._record(request, {"purpose": form.get("purpose"), "filename": upload.filename})
        return web.json_response(meta)

    async def _file_content(self, request: web.Request) -> web.Response:
        file_id = request.match_info["file_id"]
        self._record(request, None)
        if file_id not in self.files:
            return _error(404, f"No such file: {file_id}")
        return web.Response(
            body=self.files[file_id]["data"], content_type="application/octet-stream"
        )

    async def _create_batch(self, request: web.Request) -> web.Response:
        body = await request.json()
        self._record(request, body)
        if body.get("input_file_id") not in self.files:
            return _error(400, "unknown input_file_id")
        batch_id = f"batch_{next(self._ids)}"
        batch = {
            "id": batch_id,
            "object": "batch",
            "endpoint": body["endpoint"],
            "errors": None,
            "input_file_id": body["input_file_id"],
            "completion_window": body["completion_window"],
            "status": "validating",
            "output_file_id": None,
            "error_file_id": None,
            "created_at": int(time.time()),
            "metadata": body.get("metadata"),
            "request_counts": {"total": 0, "completed": 0, "failed": 0},
        }
        self.batches[batch_id] = batch
        self._batch_polls[batch_id] = 0
        return web.json_response(batch)

    async def _get_batch(self, request: web.Request) -> web.Response:
        batch_id = request.match_info["batch_id"]
        self._record(request, None)
        batch = self.batches.get(batch_id)
        if batch is None:
            return _error(404, f"No such batch: {batch_id}")
        self._batch_polls[batch_id] += 1
        if batch["status"] != "completed":
            if self._batch_polls[batch_id] >= self.batch_polls_to_complete:
                self._run_batch(batch)
            else:
                batch["status"] = "in_progress"
        return web.json_response(batch)

    def _run_batch(self, batch: dict[str, Any]) -> None:
        lines = self.files[batch["input_file_id"]]["data"].decode().splitlines()
        out, err = [], []
        for n, line in enumerate(filter(None, lines)):
            item = json.loads(line)
            rid = f"batch_req_{batch['id']}_{n}"
            body = item["body"]
            if self.batch_fail_marker in json.dumps(body["messages"]):
                err.append(
                    {
                        "id": rid,
                        "custom_id": item["custom_id"],
                        "response": None,
                        "error": {"code": "invalid_request", "message": "refused by test server"},
                    }
                )
                continue
            out.append(
                {
                    "id": rid,
                    "custom_id": item["custom_id"],
                    "error": None,
                    "response": {
                        "status_code": 200,
                        "request_id": rid,
                        "body": completion(body, echo_content(body)),
                    },
                }
            )
        for records, key in ((out, "output_file_id"), (err, "error_file_id")):
            if records:
                file_id = f"file-{next(self._ids)}"
                data = "".join(json.dumps(r) + "\n" for r in records).encode()
                self.files[file_id] = {"meta": {"id": file_id}, "data": data}
                batch[key] = file_id
        batch["status"] = "completed"
        batch["completed_at"] = int(time.time())
        batch["request_counts"] = {
            "total": len(out) + len(err),
            "completed": len(out),
            "failed": len(err),
        }

    async def _control(self, request: web.Request) -> web.Response:
        body = await request.json()
        for name in ("latency", "default", "headers", "reject_json_schema", "record", "models"):
            if name in body:
                setattr(self, name, body[name])
        if "queue" in body:
            self.queue(*body["queue"])
        if body.get("reset"):
            self.reset()
        return web.json_response({"chat_count": self.chat_count})


def last_user_message(body: dict[str, Any]) -> str:
    users = [m.get("content", "") for m in body.get("messages", []) if m.get("role") == "user"]
    return users[-1] if users else ""


def echo_content(body: dict[str, Any]) -> str:
    return json.dumps(
        {"echo": last_user_message(body), "seed": body.get("seed"), "model": body.get("model")}
    )


def _line_after(prompt: str, head: str) -> str:
    for line in prompt.splitlines():
        if line.startswith(head):
            return line[len(head):].strip()
    return ""


def simulated_answer(body: dict[str, Any]) -> str:
    """The ``simulate`` behaviour's answer (see the module's docstring)."""
    prompt = last_user_message(body)
    label = _line_after(prompt, "Label:").strip('"') or "label"
    head = "Annotation of the sample under the original rule:"
    if '"descriptions"' in prompt and '"synonyms"' in prompt:
        return json.dumps({
            "descriptions": [f"A mention in the text that the data marks as {label}."],
            "synonyms": [f"{label} mention"],
        }, ensure_ascii=False)
    if head in prompt:
        lines = prompt.splitlines()
        annotation: Any = {}
        if head in lines and lines.index(head) + 1 < len(lines):
            try:
                annotation = json.loads(lines[lines.index(head) + 1])
            except ValueError:
                annotation = {}
        rule = _line_after(prompt, "Original annotation rule:") or f"Mark every {label}."
        return json.dumps({
            "description": f"Mentions the data marks as {label}.",
            "original_rule": rule,
            "new_rule": f"Mark only the first {label} the text mentions.",
            "relabelled": annotation,
        }, ensure_ascii=False)
    return echo_content(body)


def completion(body: dict[str, Any], content: str) -> dict[str, Any]:
    prompt_tokens = sum(len(str(m.get("content", "")).split()) for m in body.get("messages", []))
    completion_tokens = len(content.split())
    return {
        "id": "chatcmpl-test",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": body.get("model", "test-model"),
        "choices": [
            {
                "index": 0,
                "finish_reason": "stop",
                "message": {"role": "assistant", "content": content},
            }
        ],
        "usage": {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
        },
    }


def _error(
    status: int,
    message: str,
    *,
    headers: dict[str, str] | None = None,
    param: str | None = None,
    type_: str = "invalid_request_error",
) -> web.Response:
    body = {"error": {"message": message, "type": type_, "param": param, "code": None}}
    return web.json_response(body, status=status, headers=headers)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--latency", type=float, default=0.0)
    parser.add_argument("--no-record", action="store_true")
    parser.add_argument("--behaviour", default="ok",
                        help="what every chat request gets (a kind: ok, simulate, ...)")
    args = parser.parse_args()
    server = LoopbackOpenAI(
        host=args.host, port=args.port, latency=args.latency, record=not args.no_record
    )
    server.default = {"kind": args.behaviour}
    server.start()
    print(f"listening {server.base_url}", flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        server.stop()


if __name__ == "__main__":
    main()
