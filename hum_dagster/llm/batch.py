"""OpenAI Batch API mode: for large jobs nobody waits on, at half the price.

``BatchManager(config, cache).submit(requests)`` writes the ``/v1/chat/completions``
requests that the cache cannot answer (and that no open batch already holds) as JSONL
with ``custom_id`` = cache key, uploads it (``purpose="batch"``), creates the batch
(``completion_window="24h"``) and at once writes its state, atomically, to
``<cache_root>/batches/<batch_id>.json``: a crash after that loses nothing, and any
process that sees the cache root can go on. ``poll()`` refreshes every open batch's
status; ``collect()`` downloads the output and error files of finished batches and puts
every valid answer into the same cache (invalid ones and errors become failures, never
cache entries). ``poll_batches`` does both, for a re-materialization or a sensor.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from hum_dagster.llm.cache import ResponseCache
from hum_dagster.llm.client import (
    _STRUCTURED_LEARNT,
    ClientConfig,
    parse_and_validate,
    prompt_preview,
    redact,
    request_body,
    request_key,
    run_sync,
)
from hum_dagster.llm.types import LLMFailure, LLMRequest, LLMResponse, Validator
from hum_dagster.llm.usage import Usage
from hum_dagster.store import fsio

log = logging.getLogger(__name__)

ENDPOINT = "/v1/chat/completions"
BATCHES = "batches"
TERMINAL = ("completed", "failed", "expired", "cancelled")
MAX_REQUESTS_PER_BATCH = 50_000
MAX_BYTES_PER_BATCH = 190 * 1024**2  # the API takes files up to 200 MB


@dataclass
class BatchStatus:
    """Where the batches under one cache root stand."""

    batches: dict[str, str] = field(default_factory=dict)  # batch id -> API status
    open: int = 0  # not yet collected
    finished: int = 0  # terminal on the API side, waiting for collect()
    collected: int = 0
    requests: int = 0  # requests in open batches

    @property
    def done(self) -> bool:
        return self.open == 0

    def as_metadata(self) -> dict[str, int | str]:
        return {
            "llm_batches_open": self.open,
            "llm_batches_finished": self.finished,
            "llm_batches_collected": self.collected,
            "llm_batch_requests_open": self.requests,
        }


class BatchManager:
    def __init__(
        self,
        config: ClientConfig,
        cache: ResponseCache | str,
        *,
        max_requests_per_batch: int = MAX_REQUESTS_PER_BATCH,
    ) -> None:
        self.config = config
        self.cache = cache if isinstance(cache, ResponseCache) else ResponseCache(cache)
        self.max_requests = max_requests_per_batch
        self.state_dir = fsio.join(self.cache.root, BATCHES)
        self.usage: Usage = config.new_usage()

    # -- state files --------------------------------------------------------------------

    def states(self) -> list[dict[str, Any]]:
        fs, path = fsio.filesystem(self.state_dir)
        fs.invalidate_cache(path)
        try:
            names = sorted(p for p in fs.ls(path, detail=False) if p.endswith(".json"))
        except FileNotFoundError:
            return []
        out = []
        for name in names:
            try:
                with fs.open(name, "rb") as handle:
                    out.append(json.loads(handle.read()))
            except (FileNotFoundError, ValueError) as exc:
                log.warning("batch state %s unreadable: %s", name, exc)
        return out

    def _save(self, state: dict[str, Any]) -> None:
        data = json.dumps(state, ensure_ascii=False, sort_keys=True, indent=1).encode("utf-8")
        fsio.write_bytes_atomic(fsio.join(self.state_dir, f"{state['batch_id']}.json"), data)

    # -- submit -------------------------------------------------------------------------

    def submit(self, requests: Sequence[LLMRequest]) -> list[str]:
        """Submit what the cache cannot answer; returns the new batch ids (maybe none)."""
        self.cache.refresh()
        open_keys = {k for s in self.states() if not s.get("collected") for k in s["requests"]}
        todo: dict[str, LLMRequest] = {}
        for request in requests:
            key = request_key(self.config, request)
            if key in todo or key in open_keys or self.cache.get(key) is not None:
                continue
            todo[key] = request
        if not todo:
            return []
        structured = self.config.structured_output
        if structured == "auto":
            structured = _STRUCTURED_LEARNT.get(
                (self.config.base_url, self.config.model), "json_schema"
            )
        chunks: list[list[tuple[str, bytes]]] = [[]]
        size = 0
        for key, request in todo.items():
            line = {
                "custom_id": key,
                "method": "POST",
                "url": ENDPOINT,
                "body": request_body(self.config, request, structured=structured),
            }
            data = (json.dumps(line, ensure_ascii=False) + "\n").encode("utf-8")
            if chunks[-1] and (
                len(chunks[-1]) >= self.max_requests or size + len(data) > MAX_BYTES_PER_BATCH
            ):
                chunks.append([])
                size = 0
            chunks[-1].append((key, data))
            size += len(data)
        return run_sync(lambda: self._submit(chunks, todo))

    async def _submit(
        self, chunks: list[list[tuple[str, bytes]]], todo: Mapping[str, LLMRequest]
    ) -> list[str]:
        ids: list[str] = []
        async with self.config.async_client() as client:
            for chunk in chunks:
                payload = b"".join(data for _, data in chunk)
                uploaded = await client.files.create(
                    file=("hum-batch.jsonl", payload, "application/jsonl"), purpose="batch"
                )
                batch = await client.batches.create(
                    input_file_id=uploaded.id,
                    endpoint=ENDPOINT,
                    completion_window="24h",
                    metadata={
                        "hum_requests": str(len(chunk)),
                        "hum_model": self.config.model[:500],
                    },
                )
                state = {
                    "batch_id": batch.id,
                    "input_file_id": uploaded.id,
                    "model": self.config.model,
                    "base_url": self.config.base_url,
                    "status": batch.status,
                    "submitted_at": time.time(),
                    "collected": False,
                    "requests": {
                        key: {
                            "step": todo[key].step,
                            "template": todo[key].template,
                            "template_version": todo[key].template_version,
                            "sample_index": todo[key].sample_index,
                            "expect_json": todo[key].expect_json,
                            "prompt": prompt_preview(todo[key]),
                        }
                        for key, _ in chunk
                    },
                }
                self._save(state)  # before anything else: a crash now loses nothing
                ids.append(batch.id)
                log.info("submitted batch %s with %d requests", batch.id, len(chunk))
        return ids

    # -- poll -----------------------------------------------------------------------------

    def poll(self) -> BatchStatus:
        """Refresh the API status of every open batch (state files are updated)."""
        states = self.states()
        open_states = [
            s for s in states if not s.get("collected") and s.get("status") not in TERMINAL
        ]
        if open_states:
            run_sync(lambda: self._poll(open_states))
        return self._summary(states)

    async def _poll(self, states: list[dict[str, Any]]) -> None:
        async with self.config.async_client() as client:
            for state in states:
                batch = await client.batches.retrieve(state["batch_id"])
                changed = batch.status != state.get("status")
                state.update(
                    status=batch.status,
                    output_file_id=batch.output_file_id,
                    error_file_id=batch.error_file_id,
                    completed_at=batch.completed_at,
                    request_counts=batch.request_counts.model_dump()
                    if batch.request_counts
                    else None,
                )
                if changed:
                    self._save(state)

    def _summary(self, states: list[dict[str, Any]]) -> BatchStatus:
        status = BatchStatus()
        for s in states:
            status.batches[s["batch_id"]] = s.get("status", "unknown")
            if s.get("collected"):
                status.collected += 1
            else:
                status.open += 1
                status.requests += len(s["requests"])
                if s.get("status") in TERMINAL:
                    status.finished += 1
        return status

    # -- collect --------------------------------------------------------------------------

    def collect(
        self, validate: Validator | Mapping[str, Validator] | None = None
    ) -> list[LLMResponse | LLMFailure]:
        """Put the answers of finished batches into the cache; returns what was collected.

        ``validate`` is one validator, or one per step name. Invalid answers and the
        error file's lines become failures (recorded, never cached); requests that the
        batch did not answer (expired, cancelled) too, so a later submit sends them again.
        """
        results: list[LLMResponse | LLMFailure] = []
        finished = [
            s for s in self.states() if not s.get("collected") and s.get("status") in TERMINAL
        ]
        for state in finished:
            files = run_sync(lambda state=state: self._download(state))
            results.extend(self._absorb(state, files, validate))
            self.cache.flush()
            state["collected"] = True
            state["collected_at"] = time.time()
            self._save(state)
        return results

    async def _download(self, state: dict[str, Any]) -> dict[str, bytes]:
        out: dict[str, bytes] = {}
        async with self.config.async_client() as client:
            for name in ("output_file_id", "error_file_id"):
                file_id = state.get(name)
                if file_id:
                    content = await client.files.content(file_id)
                    out[name] = content.content
        return out

    def _absorb(
        self,
        state: dict[str, Any],
        files: dict[str, bytes],
        validate: Validator | Mapping[str, Validator] | None,
    ) -> list[LLMResponse | LLMFailure]:
        meta = state["requests"]
        answered_at = float(state.get("completed_at") or time.time())
        results: list[LLMResponse | LLMFailure] = []
        seen: set[str] = set()

        def fail(key: str, reason: str) -> None:
            reason = redact(reason, self.config)
            info = meta.get(key, {})
            self.usage.fail(reason)
            self.cache.record_failure(
                {
                    "key": key,
                    "step": info.get("step"),
                    "reason": reason,
                    "attempts": 1,
                    "at": time.time(),
                    "batch_id": state["batch_id"],
                    "prompt": info.get("prompt"),
                }
            )
            results.append(
                LLMFailure(key=key, step=info.get("step", "?"), reason=reason, attempts=1)
            )

        for line in files.get("output_file_id", b"").decode("utf-8").splitlines():
            if not line.strip():
                continue
            item = json.loads(line)
            key = item.get("custom_id")
            if key not in meta or key in seen:
                continue
            seen.add(key)
            response = item.get("response") or {}
            if item.get("error") or response.get("status_code") != 200:
                fail(key, f"batch_error: {item.get('error') or response.get('status_code')}")
                continue
            body = response.get("body") or {}
            try:
                content = body["choices"][0]["message"]["content"] or ""
            except (KeyError, IndexError, TypeError):
                fail(key, "bad_response: no choices[0].message.content")
                continue
            info = meta[key]
            check = validate.get(info["step"]) if isinstance(validate, Mapping) else validate
            parsed, problem = parse_and_validate(content, check, info.get("expect_json", True))
            if problem is not None:
                fail(key, problem)
                continue
            used = body.get("usage") or {}
            tokens = {
                "prompt_tokens": int(used.get("prompt_tokens") or 0),
                "completion_tokens": int(used.get("completion_tokens") or 0),
            }
            entry = {
                "key": key,
                "content": content,
                "parsed": parsed,
                "model": body.get("model") or state["model"],
                "usage": tokens,
                "finish_reason": body["choices"][0].get("finish_reason"),
                "requested_at": state.get("submitted_at"),
                "answered_at": answered_at,
                "step": info["step"],
                "template": info["template"],
                "template_version": info["template_version"],
                "sample_index": info["sample_index"],
                "prompt": info.get("prompt"),
                "batch_id": state["batch_id"],
                "attempt": 0,
            }
            self.cache.put(entry)
            self.usage.batch_requests += 1
            self.usage.responses += 1
            self.usage.batch_prompt_tokens += tokens["prompt_tokens"]
            self.usage.batch_completion_tokens += tokens["completion_tokens"]
            results.append(
                LLMResponse(
                    key=key,
                    step=info["step"],
                    content=content,
                    parsed=parsed,
                    model=entry["model"],
                    usage=tokens,
                    cached=False,
                    created_at=answered_at,
                )
            )
        for line in files.get("error_file_id", b"").decode("utf-8").splitlines():
            if not line.strip():
                continue
            item = json.loads(line)
            key = item.get("custom_id")
            if key in meta and key not in seen:
                seen.add(key)
                error = item.get("error") or {}
                fail(key, f"batch_error: {error.get('code')}: {error.get('message')}")
        for key in meta:
            if key not in seen:
                fail(
                    key,
                    f"batch_missing: batch {state['batch_id']} ended {state.get('status')} without it",
                )
        return results


def poll_batches(
    config: ClientConfig,
    cache_root: str,
    validate: Validator | Mapping[str, Validator] | None = None,
) -> tuple[BatchStatus, Usage]:
    """Poll every open batch under ``cache_root`` and collect the finished ones."""
    manager = BatchManager(config, cache_root)
    manager.poll()
    manager.collect(validate)
    return manager._summary(manager.states()), manager.usage
