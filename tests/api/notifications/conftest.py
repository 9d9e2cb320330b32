"""Every channel writes to a fresh outbox directory; pushes go to the file backends."""

import pytest


@pytest.fixture(autouse=True)
def outbox_dir(settings, tmp_path):
    settings.OUTBOX_DIR = tmp_path / "outbox"
    settings.PUSH_BACKEND = "file"
    settings.SMS_BACKEND = "api.accounts.sms.FileSMSBackend"
    settings.EMAIL_BACKEND = "django.core.mail.backends.filebased.EmailBackend"
    settings.EMAIL_FILE_PATH = str(tmp_path / "outbox" / "email")
    settings.SMS_DAILY_BUDGET = 100000
    return settings.OUTBOX_DIR
