"""Where GPU jobs run, for training and evaluation alike, through Dagster Pipes.

``PipesLauncher`` holds what a launch needs besides the command: the kind
(``subprocess`` here, ``k8s``: a pod through dagster-k8s's ``PipesK8sClient``, ``ecs``:
a task through dagster-aws's ``PipesECSClient``), the image, GPU count, node selection,
storage secret, ECS cluster and networking. ``launch(context, extras, command)`` runs a
command with the Pipes ``extras`` and returns the completed invocation; the pod and the
ECS ``RunTask`` parameters come from ``hum_dagster.train.launch``.

- ``TrainingLauncher`` (``hum_dagster.defs.training.assets``): the LoRA trainer, torchrun with
  one process per GPU;
- ``EvalLauncher``: ``python -m hum_dagster.evaluation.vllm_entry`` for the ``vllm``
  evaluation backend, one GPU by default (its own pod template and ECS task).
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Sequence
from typing import Any

import dagster as dg

from hum_dagster.paths import PROJECT_DIR
from hum_dagster.train import launch

KINDS = ("subprocess", "k8s", "ecs")
H100_SELECTOR = '{"nvidia.com/gpu.product": "NVIDIA-H100-80GB-HBM3"}'


class PipesLauncher(dg.ConfigurableResource):
    """Where a command runs through Dagster Pipes: ``subprocess``, ``k8s`` or ``ecs``.

    Subclasses say which command (``command()``); ``launch`` also takes one explicitly.
    """

    kind: str = "subprocess"
    env: dict[str, str] = {}
    # subprocess
    python: str | None = None
    # k8s and ecs
    image: str = "hum-dagster-train:latest"
    gpus: int = 8
    # k8s
    namespace: str | None = None
    pod_template: str = str(launch.K8S_POD_TEMPLATE)
    node_selector_json: str = H100_SELECTOR
    storage_secret: str | None = "hum-storage"
    shm_size: str = "64Gi"
    service_account: str | None = None
    kubeconfig_file: str | None = None
    load_incluster_config: bool | None = None
    # ecs
    ecs_cluster: str = "hum-training"
    ecs_task_definition: str = "hum-train"
    ecs_capacity_provider: str = "hum-p5-h100"
    ecs_subnets: list[str] = []
    ecs_security_groups: list[str] = []
    ecs_container: str = "train"
    ecs_run_task_template: str = str(launch.ECS_RUN_TASK)
    ecs_gpu_override: bool = False  # also set the GPU count in the container override
    region_name: str | None = None

    def command(self) -> list[str]:
        raise NotImplementedError(f"{type(self).__name__} has no default command")

    def pod(self, command: Sequence[str] | None = None) -> tuple[dict[str, Any], dict[str, Any]]:
        """(pod metadata, pod spec) for dagster-k8s, from ``pod_template``."""
        return launch.k8s_pod(
            image=self.image,
            gpus=self.gpus,
            command=list(command) if command is not None else self.command(),
            template=self.pod_template,
            node_selector=json.loads(self.node_selector_json) if self.node_selector_json else None,
            storage_secret=self.storage_secret,
            shm_size=self.shm_size,
            env=self.env,
            service_account=self.service_account,
        )

    def run_task_params(self, command: Sequence[str] | None = None) -> dict[str, Any]:
        """ECS ``RunTask`` parameters for dagster-aws."""
        return launch.ecs_run_task(
            command=list(command) if command is not None else self.command(),
            cluster=self.ecs_cluster,
            task_definition=self.ecs_task_definition,
            capacity_provider=self.ecs_capacity_provider,
            subnets=self.ecs_subnets or None,
            security_groups=self.ecs_security_groups or None,
            container=self.ecs_container,
            env=self.env,
            gpus=self.gpus if self.ecs_gpu_override else None,
            template=self.ecs_run_task_template,
        )

    def launch(
        self,
        context: dg.AssetExecutionContext,
        extras: dict[str, Any],
        command: Sequence[str] | None = None,
    ) -> dg.PipesClientCompletedInvocation:
        """Run ``command`` (default: ``command()``) through Pipes with ``extras``; the
        completed invocation (its reported materialization, logs and messages)."""
        if self.kind not in KINDS:
            raise ValueError(f"unknown launcher kind {self.kind!r}: subprocess, k8s or ecs")
        cmd = list(command) if command is not None else self.command()
        if self.kind == "subprocess":
            env = {**os.environ, **self.env}
            env.setdefault("TOKENIZERS_PARALLELISM", "false")
            return dg.PipesSubprocessClient(cwd=str(PROJECT_DIR)).run(
                context=context, command=cmd, extras=extras, env=env
            )
        if self.kind == "k8s":
            from dagster_k8s import PipesK8sClient  # the `k8s` extra

            meta, spec = self.pod(cmd)
            client = PipesK8sClient(
                kubeconfig_file=self.kubeconfig_file,
                load_incluster_config=self.load_incluster_config,
            )
            return client.run(
                context=context,
                extras=extras,
                namespace=self.namespace,
                base_pod_meta=meta,
                base_pod_spec=spec,
            )
        import boto3
        from dagster_aws.pipes import PipesECSClient  # the `aws` extra

        client = PipesECSClient(client=boto3.client("ecs", region_name=self.region_name))
        return client.run(
            context=context,
            extras=extras,
            run_task_params=self.run_task_params(cmd),  # type: ignore[arg-type]
            pipes_container_name=self.ecs_container,
        )

    def python_for_kind(self) -> str:
        """The interpreter: this one (or ``python``) here, ``python`` in the image."""
        return (self.python or sys.executable) if self.kind == "subprocess" else "python"


class EvalLauncher(PipesLauncher):
    """Where vLLM evaluation runs (``eval_scores`` for models with backend ``vllm``):
    ``python -m hum_dagster.evaluation.vllm_entry`` in a subprocess, a pod or an ECS
    task with ``gpus`` GPUs (vLLM's tensor parallel size follows it on k8s and ECS)."""

    image: str = "hum-dagster-eval:latest"
    gpus: int = 1
    pod_template: str = str(launch.K8S_EVAL_POD_TEMPLATE)
    shm_size: str = "16Gi"
    ecs_task_definition: str = "hum-eval"
    ecs_container: str = "eval"
    ecs_run_task_template: str = str(launch.ECS_EVAL_RUN_TASK)
    ecs_gpu_override: bool = True

    def command(self) -> list[str]:
        return launch.vllm_command(self.python_for_kind())
