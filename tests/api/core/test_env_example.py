"""Every setting read from the environment is documented in .env.example."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]


def test_every_environment_variable_is_documented():
    settings_source = (ROOT / "api" / "config" / "settings.py").read_text()
    read = set(re.findall(r"env(?:\.\w+)?\(\s*\"([A-Z][A-Z0-9_]+)\"", settings_source))
    documented = set(
        re.findall(r"^#?\s*([A-Z][A-Z0-9_]+)=", (ROOT / ".env.example").read_text(), re.M)
    )
    assert read, "no environment variable found in the settings: the pattern is stale"
    missing = sorted(read - documented)
    assert not missing, f".env.example does not mention: {', '.join(missing)}"
