"""Fixtures of the telemetry tests: credential files in a temporary folder, fresh partitions."""

import pytest

from api.telemetry import storage


@pytest.fixture(autouse=True)
def _telemetry_var_dir(settings, tmp_path):
    """Credential files and the fleet file go to a folder of this test only."""
    settings.VAR_DIR = tmp_path
    settings.MOSQUITTO_PID_FILE = ""
    return tmp_path


@pytest.fixture(autouse=True)
def _fresh_partition_cache():
    """Partitions created inside a rolled-back test transaction no longer exist afterwards."""
    storage.forget_known_partitions()
    yield
    storage.forget_known_partitions()
