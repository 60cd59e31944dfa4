"""How the steps of a run execute: one setting, ``in_process`` by default.

- ``in_process``: every step of a run in the run's own process (the default: a run
  already is a process, and on a laptop parallelism comes from concurrent runs, so a
  second process per step only costs start-up);
- ``multiprocess``: one process per step (Dagster's default executor);
- ``k8s``: ``dagster_k8s.k8s_job_executor``, each step its own Kubernetes job (the `k8s`
  extra; with the K8sRunLauncher of the Helm chart).

Choose in a run's config (``execution: {config: {kind: k8s, k8s: {...}}}``, the other keys
are those of the chosen executor), or deployment-wide with ``HUM_EXECUTOR``, read when a
run starts (never at import).
"""

from __future__ import annotations

import os

import dagster as dg
from dagster._config import process_config
from dagster._core.definitions.executor_definition import (
    _core_in_process_executor_creation,
    _core_multiprocess_executor_creation,
    check_cross_process_constraints,
)
from dagster._core.executor.init import InitExecutorContext

KINDS = ("in_process", "multiprocess", "k8s")
ENV = "HUM_EXECUTOR"


def executor_kind(config: dict) -> str:
    kind = config.get("kind") or os.environ.get(ENV) or "in_process"
    if kind not in KINDS:
        raise dg.DagsterInvalidConfigError(
            f"executor kind {kind!r} (from {'run config' if config.get('kind') else ENV}) is not "
            f"one of {', '.join(KINDS)}", [], config,
        )
    return kind


def _sub_config(definition: dg.ExecutorDefinition, raw: dict) -> dict:
    """``raw`` validated against ``definition``'s schema, defaults filled in."""
    result = process_config(definition.config_field.config_type, raw)
    if not result.success:
        raise dg.DagsterInvalidConfigError(
            f"invalid config for the {definition.name} executor", result.errors, raw
        )
    return result.value


@dg.executor(
    name="hum_executor",
    config_schema={
        "kind": dg.Field(str, is_required=False, description=f"one of {KINDS}; default ${ENV} "
                         "or in_process"),
        "in_process": dg.Field(dg.Permissive(), is_required=False, default_value={}),
        "multiprocess": dg.Field(dg.Permissive(), is_required=False, default_value={}),
        "k8s": dg.Field(dg.Permissive(), is_required=False, default_value={}),
    },
)
def hum_executor(init_context: InitExecutorContext) -> dg.Executor:
    config = dict(init_context.executor_config)
    kind = executor_kind(config)
    if kind == "in_process":
        return _core_in_process_executor_creation(_sub_config(dg.in_process_executor, config["in_process"]))
    if kind == "multiprocess":
        check_cross_process_constraints(init_context)
        return _core_multiprocess_executor_creation(
            _sub_config(dg.multiprocess_executor, config["multiprocess"])
        )
    from dagster_k8s import k8s_job_executor  # the `k8s` extra

    sub = InitExecutorContext(
        job=init_context.job,
        executor_def=k8s_job_executor,
        executor_config=_sub_config(k8s_job_executor, config["k8s"]),
        instance=init_context.instance,
    )
    return k8s_job_executor.executor_creation_fn(sub)
