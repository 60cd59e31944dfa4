"""Concurrency pools whose limit ``hum`` sets on the instance, and why.

``base_eval``: the evaluations of listed (base) models, ``eval_scores`` and
``general_scores``. They depend on nothing the backfill makes, so its first iteration
queues them together with the sources, and the run queue is first in, first out: on a
2-core machine both run slots went to them for three minutes while every compound
partition, which the corpus, the checkpoint and its evaluation wait on, sat in the
queue. With a limit of half the run slots (1 on 2 cores) the chain to the checkpoint
always keeps the other half. The run coordinator does not dequeue a run whose steps are
all blocked on a full pool (Dagster's ``block_op_concurrency_limited_runs``, on by
default), so a waiting evaluation holds no run slot.

The fine-tuned evaluations are not in the pool: they run inside their checkpoint's run,
at the end, where nothing else is left to run beside them.

``hum`` sets a limit only where the instance has none of its own (a pool with no limit
has the instance's ``default_limit``); ``dagster instance concurrency set base_eval N``
(or the UI's concurrency page) sets another, which ``hum`` then keeps; so does the limit
``hum`` set itself, also when the run slots change later.
"""

from __future__ import annotations

BASE_EVAL_POOL = "base_eval"


def default_limits(max_concurrent_runs: int) -> dict[str, int]:
    """``base_eval``: half the run slots, at least one (1 on a 2-core machine)."""
    return {BASE_EVAL_POOL: max(1, max_concurrent_runs // 2)}


def ensure_pool_limits(instance) -> dict[str, int]:
    """Set each pool of ``default_limits`` (of the instance's run queue) that has no
    explicit limit on ``instance``; returns the limits it set."""
    runs = instance.get_concurrency_config().run_queue_config.max_concurrent_runs
    limits = default_limits(runs if runs and runs > 0 else 1)  # -1: no run limit
    storage = instance.event_log_storage
    explicit = {p.name for p in storage.get_pool_limits() if not p.from_default}
    done = {}
    for pool, limit in limits.items():
        if pool not in explicit:
            storage.set_concurrency_slots(pool, limit)
            done[pool] = limit
    return done
