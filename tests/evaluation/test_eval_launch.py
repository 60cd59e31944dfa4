"""vLLM evaluation launch specs checked like the training ones (Kubernetes models,
botocore's ECS model), the shared launcher, and the model list's vllm backend."""

from __future__ import annotations

import json
import sys

import dagster as dg
import pytest

from hum_dagster.defs.evaluation.assets import (
    EvalSettings,
    checkpoint_model,
    eval_partitions,
    finetuned_model_name,
    finetuned_models,
    listed_models,
    model_for_run,
    models,
)
from hum_dagster.defs.resources.launchers import EvalLauncher, PipesLauncher
from hum_dagster.defs.resources.settings import base_model_specs
from hum_dagster.defs.training.assets import TrainingLauncher
from hum_dagster.evaluation.registry import ModelSpec, load_models, make_generator
from hum_dagster.readers.catalog import CatalogError
from hum_dagster.train import launch


def test_commands():
    assert launch.vllm_command("py") == ["py", "-m", "hum_dagster.evaluation.vllm_entry"]
    assert EvalLauncher().command() == [sys.executable, "-m", "hum_dagster.evaluation.vllm_entry"]
    assert EvalLauncher(kind="k8s").command()[0] == "python"
    # one resource class for both: training keeps its own command and defaults
    assert isinstance(TrainingLauncher(), PipesLauncher)
    assert TrainingLauncher().command()[-1] == "hum_dagster.train.entry"
    assert TrainingLauncher().pod_template == str(launch.K8S_POD_TEMPLATE)
    with pytest.raises(NotImplementedError):
        PipesLauncher().command()
    with pytest.raises(ValueError, match="unknown launcher kind"):
        EvalLauncher(kind="slurm").launch(None, {})  # type: ignore[arg-type]


def _roundtrip_pod(meta, spec):
    import kubernetes
    from dagster_k8s.pipes import build_pod_body

    pod = build_pod_body(
        pod_name="hum-eval-abc",
        image=None,
        command=None,
        env_vars={"DAGSTER_PIPES_CONTEXT": "e30=", "DAGSTER_PIPES_MESSAGES": "e30="},
        base_pod_meta=meta,
        base_pod_spec=spec,
    )
    assert isinstance(pod, kubernetes.client.V1Pod)
    api = kubernetes.client.ApiClient()

    class Response:
        data = json.dumps(api.sanitize_for_serialization(pod))

    return api.deserialize(Response(), "V1Pod")


def test_eval_pod_is_a_valid_v1pod():
    pytest.importorskip("dagster_k8s")
    launcher = EvalLauncher(kind="k8s", image="registry/hum-eval:1", gpus=2, env={"X": "1"})
    meta, spec = launcher.pod()
    pod = _roundtrip_pod(meta, spec)
    assert pod.metadata.labels["app.kubernetes.io/name"] == "hum-eval"
    container = pod.spec.containers[0]
    assert container.name == "eval" and container.image == "registry/hum-eval:1"
    assert container.command == ["python", "-m", "hum_dagster.evaluation.vllm_entry"]
    assert container.resources.limits["nvidia.com/gpu"] == "2"
    assert container.resources.requests["nvidia.com/gpu"] == "2"
    assert {e.name for e in container.env} >= {"X", "DAGSTER_PIPES_CONTEXT", "HUM_HOME"}
    assert container.env_from[0].secret_ref.name == "hum-storage"
    assert pod.spec.node_selector == {"nvidia.com/gpu.product": "NVIDIA-H100-80GB-HBM3"}
    assert pod.spec.tolerations[0].key == "nvidia.com/gpu"
    assert pod.spec.restart_policy == "Never"
    shm = next(v for v in pod.spec.volumes if v.name == "dshm")
    assert shm.empty_dir.medium == "Memory" and shm.empty_dir.size_limit == "16Gi"
    # a command given to launch() goes into the pod instead of the default one
    _, spec2 = launcher.pod(["python", "-c", "pass"])
    assert spec2["containers"][0]["command"] == ["python", "-c", "pass"]


def test_eval_pod_template_typo_is_rejected(tmp_path):
    pytest.importorskip("dagster_k8s")
    from dagster_k8s.pipes import build_pod_body

    bad = tmp_path / "pod.yaml"
    text = launch.K8S_EVAL_POD_TEMPLATE.read_text()
    bad.write_text(text.replace("volumeMounts:", "volumeMount:"))
    meta, spec = EvalLauncher(kind="k8s", pod_template=str(bad)).pod()
    with pytest.raises(Exception, match="volumeMount|volume_mount"):
        build_pod_body("p", None, None, {}, meta, spec)


def _ecs_validate(operation: str, params: dict) -> None:
    import botocore.session
    from botocore.validate import validate_parameters

    model = botocore.session.get_session().get_service_model("ecs")
    validate_parameters(params, model.operation_model(operation).input_shape)


def test_eval_ecs_task_definition_and_run_task_match_botocore():
    pytest.importorskip("botocore")
    definition = launch.ecs_task_definition(
        image="registry/hum-eval:1", gpus=1, template=launch.ECS_EVAL_TASK_DEFINITION
    )
    _ecs_validate("RegisterTaskDefinition", definition)
    container = definition["containerDefinitions"][0]
    assert container["name"] == "eval" and container["image"] == "registry/hum-eval:1"
    assert container["resourceRequirements"] == [{"type": "GPU", "value": "1"}]
    assert container["command"][-1] == "hum_dagster.evaluation.vllm_entry"

    launcher = EvalLauncher(
        kind="ecs", gpus=2, ecs_subnets=["subnet-1"], ecs_security_groups=["sg-1"],
        env={"HUM_STORAGE_ROOT": "s3://bucket/hum"},
    )
    params = launcher.run_task_params()
    _ecs_validate("RunTask", params)
    assert params["taskDefinition"] == "hum-eval"
    assert params["tags"] == [{"key": "app", "value": "hum-eval"}]
    override = params["overrides"]["containerOverrides"][0]
    assert override["name"] == "eval"
    assert override["command"] == ["python", "-m", "hum_dagster.evaluation.vllm_entry"]
    assert override["resourceRequirements"] == [{"type": "GPU", "value": "2"}]
    assert override["environment"] == [{"name": "HUM_STORAGE_ROOT", "value": "s3://bucket/hum"}]
    assert params["networkConfiguration"]["awsvpcConfiguration"]["subnets"] == ["subnet-1"]
    # the training launcher's task is unchanged: no GPU override, its own container
    train = TrainingLauncher(kind="ecs").run_task_params()
    _ecs_validate("RunTask", train)
    assert "resourceRequirements" not in train["overrides"]["containerOverrides"][0]
    assert train["taskDefinition"] == "hum-train"


def test_vllm_engine_options_follow_the_launcher(tmp_path):
    spec = ModelSpec("m", "vllm", "/models/m")
    settings = EvalSettings()
    local = settings.vllm_options(spec, EvalLauncher(), str(tmp_path))
    assert local == {"cache_dir": str(tmp_path / "model_cache")}  # 1 GPU, vLLM's default
    pod = settings.vllm_options(spec, EvalLauncher(kind="k8s", gpus=4), "s3://b/hum")
    assert pod == {"tensor_parallel_size": 4}  # the pod keeps its cache under its HUM_HOME
    tp2 = ModelSpec("m", "vllm", "/models/m", vllm={"tensor_parallel_size": 2})
    assert "tensor_parallel_size" not in settings.vllm_options(tp2, EvalLauncher(kind="k8s"), "/r")
    explicit = EvalSettings(vllm_tensor_parallel_size=8, vllm_max_model_len=4096)
    assert explicit.vllm_options(spec, EvalLauncher(kind="ecs"), "s3://b") == {
        "tensor_parallel_size": 8, "max_model_len": 4096,
    }


def test_finetuned_models_resolve_against_the_run_storage_root(tmp_path):
    base = sorted(base_model_specs())[0]
    name = finetuned_model_name(base, "full")
    keys = set(eval_partitions.get_partitions_def_for_dimension("model").get_partition_keys())
    # eval_scores: the listed models only; a checkpoint is a finetuned_eval_scores partition
    assert name not in keys and keys == set(listed_models()) and set(models()) == keys | set(finetuned_models())
    assert checkpoint_model(dg.MultiPartitionKey({"base_model": base, "corpus_variant": "full"})) == name
    assert not models()[name].adapter.startswith("/")  # no storage root baked in at import
    spec = model_for_run(name, "s3://bucket/run-a")
    assert spec.backend == "transformers"
    assert spec.adapter == f"s3://bucket/run-a/checkpoints/{base}/full/adapter"
    other = model_for_run(name, str(tmp_path))
    assert other.adapter == f"{tmp_path}/checkpoints/{base}/full/adapter"
    served = model_for_run(name, "s3://bucket/run-a", "vllm")
    assert served.backend == "vllm" and served.model == f"s3://bucket/run-a/base_models/{base}"
    assert model_for_run("smollm2_base", "/x") == models()["smollm2_base"]
    with pytest.raises(ValueError, match="finetuned_backend"):
        model_for_run(name, "/x", "tgi")


def test_model_list_accepts_vllm_with_engine_settings(tmp_path):
    good = tmp_path / "models.yaml"
    good.write_text(
        "models:\n"
        "  - {name: qwen_vllm, backend: vllm, model: s3://b/qwen, adapter: s3://b/lora,\n"
        "     vllm: {tensor_parallel_size: 2, max_model_len: 8192}}\n"
    )
    spec = load_models(good)["qwen_vllm"]
    assert spec.backend == "vllm" and spec.vllm == {"tensor_parallel_size": 2, "max_model_len": 8192}
    bad = tmp_path / "bad.yaml"
    bad.write_text("models:\n  - {name: q, backend: vllm, model: m, vllm: {gpu_util: 1}}\n")
    with pytest.raises(CatalogError, match="unknown vllm settings"):
        load_models(bad)
    bad.write_text("models:\n  - {name: q, backend: transformers, model: m, vllm: {batch_size: 1}}\n")
    with pytest.raises(CatalogError, match="need backend vllm"):
        load_models(bad)
    with pytest.raises(ValueError, match="vllm_launch"):
        make_generator(spec, None)


def test_vllm_generator_engine_settings_reach_the_extras(tmp_path):
    """The engine settings from the model list and the run reach the entry point's
    extras; a missing generation is an error, not an empty answer."""
    from hum_dagster.evaluation.generate import DecodingConfig

    seen = []

    def launch_entry(extras):  # writes what vllm_entry would, except the last row
        seen.append(extras)
        with open(extras["instructions"], encoding="utf-8") as handle:
            rows = [json.loads(line) for line in handle]
        with open(extras["output"], "w", encoding="utf-8") as handle:
            for row in rows[:-1]:
                handle.write(json.dumps({"instruction_id": row["instruction_id"], "output": "x"}) + "\n")
        return {"generated_tokens": 1}

    spec = ModelSpec("q", "vllm", "/models/q", adapter="/lora", vllm={"max_model_len": 2048})
    gen = make_generator(
        spec, DecodingConfig(greedy=True, max_new_tokens=9), vllm_launch=launch_entry,
        vllm_workdir=str(tmp_path / "work"), vllm_options={"tensor_parallel_size": 2},
    )
    with pytest.raises(RuntimeError, match="1 missing"):
        gen.generate(["a", "b"])
    extras = seen[0]
    assert extras["model"] == "/models/q" and extras["adapter"] == "/lora"
    assert extras["greedy"] is True and extras["max_new_tokens"] == 9
    assert extras["max_model_len"] == 2048 and extras["tensor_parallel_size"] == 2
