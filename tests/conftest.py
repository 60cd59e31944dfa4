from __future__ import annotations

import pytest

from hum_dagster.paths import ASSETS_DIR, shared_data_dir


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
