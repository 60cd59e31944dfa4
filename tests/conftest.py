from __future__ import annotations

import os

import pytest
from hypothesis import settings

from hum_dagster.paths import ASSETS_DIR, shared_data_dir

# Property tests draw the same examples on every run (seeded by the test), so a CI
# result never depends on luck; set HUM_HYPOTHESIS_RANDOM=1 to explore new examples.
settings.register_profile("hum", derandomize=True)
settings.register_profile("explore", derandomize=False)
settings.load_profile("explore" if os.environ.get("HUM_HYPOTHESIS_RANDOM") else "hum")


@pytest.fixture(scope="session")
def shared_data():
    """The real public benchmark files in ../shared/data; skip when absent."""
    path = shared_data_dir()
    if not path.is_dir():
        pytest.skip(f"shared benchmark data not found at {path} (set HUM_SHARED_DATA)")
    return path


@pytest.fixture(scope="session")
def assets_dir():
    return ASSETS_DIR


@pytest.fixture(scope="session")
def moto_s3():
    """A real S3 API: moto's server on loopback, one per test session. The AWS variables
    point every client (s3fs, boto3, subprocesses given this dict) at it; yields them."""
    moto_server = pytest.importorskip("moto.server")
    import s3fs

    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    env = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
           "AWS_DEFAULT_REGION": "us-east-1", "AWS_ENDPOINT_URL": f"http://{host}:{port}"}
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    s3fs.S3FileSystem.clear_instance_cache()
    yield env
    server.stop()
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value
    s3fs.S3FileSystem.clear_instance_cache()


@pytest.fixture()
def s3_bucket(moto_s3):
    """A fresh bucket on the session's S3 server, as ``s3://<name>``."""
    import uuid

    import s3fs

    name = f"hum-{uuid.uuid4().hex[:12]}"
    s3fs.S3FileSystem().mkdir(name)
    return f"s3://{name}"
