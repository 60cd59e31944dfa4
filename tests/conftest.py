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
