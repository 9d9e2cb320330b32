import pytest


@pytest.fixture(autouse=True)
def media_and_outbox(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.OUTBOX_DIR = tmp_path / "outbox"
    settings.PUSH_BACKEND = "file"
