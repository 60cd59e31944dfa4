"""The Helm values and the code-location image: consistent with the project and valid
Kubernetes once dagster-k8s turns them into a run's Job (no cluster, no helm binary)."""

from __future__ import annotations

import re
import tomllib

import pytest
import yaml

from hum_dagster.paths import PROJECT_DIR

VALUES = PROJECT_DIR / "resources" / "helm" / "values.yaml"
DOCKERFILE = PROJECT_DIR / "resources" / "docker" / "Dockerfile"


def _values() -> dict:
    return yaml.safe_load(VALUES.read_text())


def _snake(key: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", key).lower()


def test_code_location_module_is_the_projects_definitions():
    project = tomllib.loads((PROJECT_DIR / "pyproject.toml").read_text())
    deployment = _values()["dagster-user-deployments"]["deployments"][0]
    module = deployment["dagsterApiGrpcArgs"][deployment["dagsterApiGrpcArgs"].index("-m") + 1]
    assert module == "hum_dagster.definitions"
    assert f'"-m", "{module}"' in DOCKERFILE.read_text()  # the image serves the same module
    assert str(deployment["port"]) in DOCKERFILE.read_text()
    assert "hum_dagster" in str(project["tool"])  # the dg/dagster table names the package


def test_run_pod_of_the_run_launcher_is_a_valid_kubernetes_job():
    pytest.importorskip("dagster_k8s")
    import kubernetes
    from dagster_k8s.job import (
        DagsterK8sJobConfig,
        UserDefinedDagsterK8sConfig,
        construct_dagster_k8s_job,
    )

    launcher = _values()["runLauncher"]
    assert launcher["type"] == "K8sRunLauncher"
    config = launcher["config"]["k8sRunLauncher"]
    run_k8s = {_snake(k): v for k, v in config["runK8sConfig"].items()}
    job = construct_dagster_k8s_job(
        DagsterK8sJobConfig(
            job_image="hum-dagster:test",
            dagster_home="/opt/dagster/dagster_home",
            env_secrets=[s["name"] for s in config["envSecrets"]],
        ),
        args=["dagster", "api", "execute_run", "{}"],
        job_name="dagster-run-abc",
        user_defined_k8s_config=UserDefinedDagsterK8sConfig.from_dict(run_k8s),
    )
    assert isinstance(job, kubernetes.client.V1Job)
    api = kubernetes.client.ApiClient()

    class Response:
        data = __import__("json").dumps(api.sanitize_for_serialization(job))

    again = api.deserialize(Response(), "V1Job")
    container = again.spec.template.spec.containers[0]
    assert container.image == "hum-dagster:test"
    assert container.resources.requests["memory"] == "4Gi"
    assert container.env_from[0].secret_ref.name == "hum-storage"


def test_a_misspelt_container_field_is_rejected():
    pytest.importorskip("dagster_k8s")
    from dagster_k8s.job import (
        DagsterK8sJobConfig,
        UserDefinedDagsterK8sConfig,
        construct_dagster_k8s_job,
    )

    bad = {"container_config": {"resourcez": {"requests": {"cpu": "1"}}}}
    with pytest.raises(Exception, match="resourcez"):
        construct_dagster_k8s_job(
            DagsterK8sJobConfig(job_image="i", dagster_home="/h"),
            args=["x"],
            job_name="j",
            user_defined_k8s_config=UserDefinedDagsterK8sConfig.from_dict(bad),
        )


def test_run_monitoring_and_queue_are_on():
    daemon = _values()["dagsterDaemon"]
    assert daemon["runMonitoring"]["enabled"] is True
    assert daemon["runCoordinator"]["type"] == "QueuedRunCoordinator"
    assert daemon["runCoordinator"]["config"]["queuedRunCoordinator"]["maxConcurrentRuns"] > 0
