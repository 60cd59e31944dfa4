"""Launch specs for the GPU jobs (the trainer, vLLM evaluation): the command, a
Kubernetes pod, an ECS task.

Pure functions over plain dicts (no Dagster, no cluster): the templates in
``resources/k8s/`` and ``resources/ecs/`` are loaded and filled with the image, GPU
count, node selection, shared memory and storage credentials; ``hum_dagster.defs.training.assets``
hands the result to dagster-k8s's ``PipesK8sClient`` or dagster-aws's ``PipesECSClient``.
The tests check the results against the Kubernetes models and botocore's ECS model.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

from hum_dagster.paths import PROJECT_DIR

RESOURCES = PROJECT_DIR / "resources"
K8S_POD_TEMPLATE = RESOURCES / "k8s" / "training-pod.yaml"
ECS_TASK_DEFINITION = RESOURCES / "ecs" / "training-task-definition.json"
ECS_RUN_TASK = RESOURCES / "ecs" / "training-run-task.json"
K8S_EVAL_POD_TEMPLATE = RESOURCES / "k8s" / "eval-pod.yaml"
ECS_EVAL_TASK_DEFINITION = RESOURCES / "ecs" / "eval-task-definition.json"
ECS_EVAL_RUN_TASK = RESOURCES / "ecs" / "eval-run-task.json"
TRAINING_CONFIGS = RESOURCES / "training"
ENTRY_MODULE = "hum_dagster.train.entry"
VLLM_ENTRY_MODULE = "hum_dagster.evaluation.vllm_entry"
GPU_RESOURCE = "nvidia.com/gpu"


def trainer_command(nproc_per_node: int = 1, python: str = "python") -> list[str]:
    """``python -m hum_dagster.train.entry``, or torchrun with one process per GPU."""
    if nproc_per_node <= 1:
        return [python, "-m", ENTRY_MODULE]
    return [
        python,
        "-m",
        "torch.distributed.run",
        "--standalone",
        f"--nproc_per_node={nproc_per_node}",
        "-m",
        ENTRY_MODULE,
    ]


def vllm_command(python: str = "python") -> list[str]:
    """``python -m hum_dagster.evaluation.vllm_entry`` (vLLM spreads one model over the
    GPUs itself with ``tensor_parallel_size``: one process)."""
    return [python, "-m", VLLM_ENTRY_MODULE]


def load_training_config(path: str | Path) -> dict[str, Any]:
    """A training configuration file (YAML) as a dict of TrainingConfig fields."""
    path = Path(path)
    if not path.is_absolute() and not path.exists():
        path = TRAINING_CONFIGS / path
    with open(path, encoding="utf-8") as handle:
        data = yaml.safe_load(handle) or {}
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a mapping of training settings")
    return data


def _load_yaml(path: str | Path) -> dict[str, Any]:
    with open(path, encoding="utf-8") as handle:
        return yaml.safe_load(handle)


def k8s_pod(
    *,
    image: str,
    gpus: int,
    command: Sequence[str],
    template: str | Path = K8S_POD_TEMPLATE,
    node_selector: Mapping[str, str] | None = None,
    tolerations: Sequence[Mapping[str, Any]] | None = None,
    storage_secret: str | None = None,
    shm_size: str | None = None,
    env: Mapping[str, str] | None = None,
    service_account: str | None = None,
    labels: Mapping[str, str] | None = None,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """(pod metadata, pod spec), camelCase as in a manifest, from the template.

    The first container gets the image, the command, ``nvidia.com/gpu`` limits and
    requests, environment (storage credentials come from ``storage_secret`` through
    ``envFrom``); ``/dev/shm`` is a memory-backed emptyDir of ``shm_size`` (NCCL and
    data loader workers need more than Docker's 64 MiB).
    """
    manifest = _load_yaml(template)
    meta = copy.deepcopy(manifest.get("metadata") or {})
    spec = copy.deepcopy(manifest["spec"])
    if labels:
        meta["labels"] = {**(meta.get("labels") or {}), **labels}
    container = spec["containers"][0]
    container["image"] = image
    container["command"] = list(command)
    resources = container.setdefault("resources", {})
    for part in ("limits", "requests"):
        resources.setdefault(part, {})[GPU_RESOURCE] = str(gpus)
    if env:
        current = [e for e in container.get("env", []) if e.get("name") not in env]
        container["env"] = current + [{"name": k, "value": v} for k, v in env.items()]
    if storage_secret:
        env_from = [
            e
            for e in container.get("envFrom", [])
            if (e.get("secretRef") or {}).get("name") != storage_secret
        ]
        container["envFrom"] = [*env_from, {"secretRef": {"name": storage_secret}}]
    if node_selector is not None:
        spec["nodeSelector"] = dict(node_selector)
    if tolerations is not None:
        spec["tolerations"] = [dict(t) for t in tolerations]
    if shm_size:
        for volume in spec.get("volumes", []):
            if volume.get("name") == "dshm":
                volume.setdefault("emptyDir", {})["sizeLimit"] = shm_size
    if service_account:
        spec["serviceAccountName"] = service_account
    return meta, spec


def ecs_task_definition(
    *, image: str, gpus: int, template: str | Path = ECS_TASK_DEFINITION
) -> dict[str, Any]:
    """``RegisterTaskDefinition`` parameters from the template, with image and GPUs."""
    with open(template, encoding="utf-8") as handle:
        definition = json.load(handle)
    container = definition["containerDefinitions"][0]
    container["image"] = image
    requirements = [r for r in container.get("resourceRequirements", []) if r["type"] != "GPU"]
    container["resourceRequirements"] = [*requirements, {"type": "GPU", "value": str(gpus)}]
    return definition


def ecs_run_task(
    *,
    command: Sequence[str],
    cluster: str | None = None,
    task_definition: str | None = None,
    capacity_provider: str | None = None,
    subnets: Sequence[str] | None = None,
    security_groups: Sequence[str] | None = None,
    container: str = "train",
    env: Mapping[str, str] | None = None,
    gpus: int | None = None,
    template: str | Path = ECS_RUN_TASK,
) -> dict[str, Any]:
    """``RunTask`` parameters: cluster, task definition, the GPU capacity provider,
    networking and a container override with the command and environment."""
    with open(template, encoding="utf-8") as handle:
        params = json.load(handle)
    if cluster:
        params["cluster"] = cluster
    if task_definition:
        params["taskDefinition"] = task_definition
    if capacity_provider:
        params["capacityProviderStrategy"] = [{"capacityProvider": capacity_provider, "weight": 1}]
    vpc = params.setdefault("networkConfiguration", {}).setdefault("awsvpcConfiguration", {})
    if subnets is not None:
        vpc["subnets"] = list(subnets)
    if security_groups is not None:
        vpc["securityGroups"] = list(security_groups)
    override: dict[str, Any] = {"name": container, "command": list(command)}
    if env:
        override["environment"] = [{"name": k, "value": v} for k, v in env.items()]
    if gpus:
        override["resourceRequirements"] = [{"type": "GPU", "value": str(gpus)}]
    params.setdefault("overrides", {})["containerOverrides"] = [override]
    return params
