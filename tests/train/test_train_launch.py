"""Launch specs checked against the Kubernetes and ECS schemas, without a cluster."""

from __future__ import annotations

import json
import sys

import pytest

from hum_dagster.defs.training.assets import TrainingLauncher
from hum_dagster.train import launch


def test_trainer_command():
    assert launch.trainer_command(1, "py") == ["py", "-m", "hum_dagster.train.entry"]
    cmd = launch.trainer_command(8, "python")
    assert cmd[:3] == ["python", "-m", "torch.distributed.run"]
    assert "--nproc_per_node=8" in cmd and cmd[-2:] == ["-m", "hum_dagster.train.entry"]
    assert TrainingLauncher().command()[0] == sys.executable


def test_k8s_pod_is_a_valid_v1pod():
    pytest.importorskip("dagster_k8s")
    import kubernetes
    from dagster_k8s.pipes import build_pod_body

    launcher = TrainingLauncher(kind="k8s", image="registry/hum-train:1", gpus=8, env={"X": "1"})
    meta, spec = launcher.pod()
    # dagster-k8s's own construction: it rejects keys the Kubernetes models do not know
    pod = build_pod_body(
        pod_name="hum-train-abc",
        image=None,
        command=None,
        env_vars={"DAGSTER_PIPES_CONTEXT": "e30=", "DAGSTER_PIPES_MESSAGES": "e30="},
        base_pod_meta=meta,
        base_pod_spec=spec,
    )
    assert isinstance(pod, kubernetes.client.V1Pod)
    # and a manifest round trip through the official client's deserialiser
    api = kubernetes.client.ApiClient()
    manifest = api.sanitize_for_serialization(pod)

    class Response:
        data = json.dumps(manifest)

    again = api.deserialize(Response(), "V1Pod")
    container = again.spec.containers[0]
    assert container.image == "registry/hum-train:1"
    assert container.command[-2:] == ["-m", "hum_dagster.train.entry"]
    assert "--nproc_per_node=8" in container.command
    assert container.resources.limits["nvidia.com/gpu"] == "8"
    assert container.resources.requests["nvidia.com/gpu"] == "8"
    assert {e.name for e in container.env} >= {"X", "DAGSTER_PIPES_CONTEXT", "NCCL_DEBUG"}
    assert container.env_from[0].secret_ref.name == "hum-storage"
    assert again.spec.node_selector == {"nvidia.com/gpu.product": "NVIDIA-H100-80GB-HBM3"}
    assert again.spec.tolerations[0].key == "nvidia.com/gpu"
    assert again.spec.restart_policy == "Never"
    shm = next(v for v in again.spec.volumes if v.name == "dshm")
    assert shm.empty_dir.medium == "Memory" and shm.empty_dir.size_limit == "64Gi"
    assert any(m.mount_path == "/dev/shm" for m in container.volume_mounts)


def test_k8s_template_typo_is_rejected(tmp_path):
    pytest.importorskip("dagster_k8s")
    from dagster_k8s.pipes import build_pod_body

    bad = tmp_path / "pod.yaml"
    bad.write_text(launch.K8S_POD_TEMPLATE.read_text().replace("nodeSelector:", "nodeSelektor:"))
    meta, spec = launch.k8s_pod(image="i", gpus=1, command=["x"], template=bad, node_selector=None)
    with pytest.raises(Exception, match="nodeSelektor|node_selektor"):
        build_pod_body("p", None, None, {}, meta, spec)


def _ecs_validate(operation: str, params: dict) -> None:
    import botocore.session
    from botocore.validate import validate_parameters

    model = botocore.session.get_session().get_service_model("ecs")
    validate_parameters(params, model.operation_model(operation).input_shape)


def test_ecs_task_definition_and_run_task_match_botocore():
    pytest.importorskip("botocore")
    definition = launch.ecs_task_definition(image="registry/hum-train:1", gpus=8)
    _ecs_validate("RegisterTaskDefinition", definition)
    gpu = definition["containerDefinitions"][0]["resourceRequirements"]
    assert gpu == [{"type": "GPU", "value": "8"}]
    assert definition["containerDefinitions"][0]["linuxParameters"]["sharedMemorySize"] >= 65536

    launcher = TrainingLauncher(
        kind="ecs",
        gpus=8,
        ecs_subnets=["subnet-1"],
        ecs_security_groups=["sg-1"],
        env={"HUM_STORAGE_ROOT": "s3://bucket/hum"},
    )
    params = launcher.run_task_params()
    _ecs_validate("RunTask", params)
    assert params["capacityProviderStrategy"] == [{"capacityProvider": "hum-p5-h100", "weight": 1}]
    override = params["overrides"]["containerOverrides"][0]
    assert override["name"] == "train" and "--nproc_per_node=8" in override["command"]
    assert override["environment"] == [{"name": "HUM_STORAGE_ROOT", "value": "s3://bucket/hum"}]
    assert params["networkConfiguration"]["awsvpcConfiguration"]["subnets"] == ["subnet-1"]


def test_ecs_validation_catches_mistakes():
    pytest.importorskip("botocore")
    from botocore.exceptions import ParamValidationError

    params = launch.ecs_run_task(command=["x"])
    params["capacityProviderStrategy"] = [{"provider": "x"}]
    with pytest.raises(ParamValidationError):
        _ecs_validate("RunTask", params)


def test_launcher_training_configuration():
    launcher = TrainingLauncher(kind="k8s", gpus=8, training_config="paper.yaml")
    config = launcher.training_configuration({"max_steps": 3})
    assert config.world_size == 8 and config.max_steps == 3
    assert config.batch_plan()["gradient_accumulation_steps"] == 20
    with pytest.raises(ValueError, match="unknown launcher kind"):
        TrainingLauncher(kind="slurm").launch(None, {})  # type: ignore[arg-type]


def test_entry_point_imports_no_dagster():
    import subprocess

    code = (
        "import sys, hum_dagster.train.entry; "
        "print([m for m in sys.modules if m == 'dagster' or m.startswith('dagster.')])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_training_assets_load_with_the_project_definitions():
    import dagster as dg

    from hum_dagster.definitions import defs
    from hum_dagster.defs.training.assets import (
        CORPUS_VARIANTS,
        base_models,
        finetuned_checkpoint,
        training_assets,
    )

    definitions = defs()
    dg.Definitions.validate_loadable(definitions)
    graph = definitions.resolve_asset_graph()
    assert {a.key for a in training_assets} <= graph.get_all_asset_keys()
    assert graph.get(finetuned_checkpoint.key).parent_keys >= {base_models.key}
    # base models are registered at run time: the training partitions follow them
    instance = dg.DagsterInstance.ephemeral()
    instance.add_dynamic_partitions("base_models", ["m1", "m2"])
    keys = finetuned_checkpoint.partitions_def.get_partition_keys(dynamic_partitions_store=instance)
    assert len(keys) == len(CORPUS_VARIANTS) * 2
