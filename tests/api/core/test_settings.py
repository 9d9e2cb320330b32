"""Production settings refuse to start without secrets and pass Django's deploy checks."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
SECRET = "s3cr3t-" + "x7Kq9Lm2Vb8Nc4Zr6Tw1Yp5Hd3Gf0Js" * 2
JWT_KEY = "jwt-" + "Pq3Wn8Rb2Xm7Lc5Vk9Tz1Hy6Gd4Sf0Ja" * 2


def _manage(*args: str, **env: str) -> subprocess.CompletedProcess:
    base = {k: v for k, v in os.environ.items() if k not in {"SECRET_KEY", "JWT_SIGNING_KEY"}}
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env={**base, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({}, "SECRET_KEY must be set"),
        ({"SECRET_KEY": SECRET}, "JWT_SIGNING_KEY must be set"),
        ({"SECRET_KEY": SECRET, "JWT_SIGNING_KEY": SECRET}, "must differ"),
        ({"SECRET_KEY": SECRET, "JWT_SIGNING_KEY": JWT_KEY}, "ALLOWED_HOSTS must be set"),
    ],
)
def test_production_refuses_to_start_without_secrets(env, message):
    result = _manage("check", PALIER_ENV="production", ALLOWED_HOSTS="", **env)
    assert result.returncode != 0
    assert message in result.stderr


def test_production_passes_the_deploy_checks():
    result = _manage(
        "check",
        "--deploy",
        "--fail-level",
        "WARNING",
        PALIER_ENV="production",
        SECRET_KEY=SECRET,
        JWT_SIGNING_KEY=JWT_KEY,
        ALLOWED_HOSTS="palier.example.org",
    )
    assert result.returncode == 0, result.stderr + result.stdout
    assert "no issues" in result.stdout


def test_development_defaults_are_the_embedded_mode():
    script = (
        "import django; django.setup(); from django.conf import settings as s; "
        "print(s.DATABASES['default']['ENGINE'], s.CELERY_BROKER_URL, s.MQTT_URL, s.DEBUG)"
    )
    clean = {
        k: v
        for k, v in os.environ.items()
        if k not in {"DATABASE_URL", "CELERY_BROKER_URL", "MQTT_URL", "REDIS_URL", "CACHE_URL"}
    }
    result = subprocess.run(
        [sys.executable, "-c", script],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        env={**clean, "DJANGO_SETTINGS_MODULE": "api.config.settings"},
    )
    assert result.stdout.split() == [
        "django.db.backends.sqlite3",
        "filesystem://",
        "mqtt://palier-bridge:palier-bridge-dev-password@127.0.0.1:1884",
        "True",
    ]
