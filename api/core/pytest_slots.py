"""Give each pytest-xdist worker services of its own, before settings are read.

Registered as a pytest plugin (pyproject's `pytest11` entry point), so it is imported before
pytest-env fills in the defaults of `[tool.pytest.ini_options] env`, which use the values set
here: worker N gets Redis databases of its own (a worker's Celery tasks must never reach
another worker's consumers, nor its cache be flushed by another's test) and a var/ folder of
its own. PostgreSQL needs nothing: pytest-django gives each worker its own test database.

Workers inherit the environment of the main pytest process, where pytest-env has already
filled in slot 0's values: a worker drops those (but keeps what the person running the suite
set) so that pytest-env fills them in again for its own slot.
"""

import os

DERIVED = ("CELERY_BROKER_URL", "REDIS_URL", "PALIER_VAR_DIR")
SLOT_VARIABLES = ("PALIER_TEST_SLOT", "PALIER_TEST_BROKER_DB", "PALIER_TEST_CACHE_DB")

_worker = os.environ.get("PYTEST_XDIST_WORKER", "")
if not _worker:
    # The main process: remember which values were given, before pytest-env adds its own.
    os.environ["PALIER_TEST_GIVEN"] = ",".join(name for name in DERIVED if name in os.environ)
    for name in SLOT_VARIABLES:
        os.environ.pop(name, None)
else:
    given = set(filter(None, os.environ.get("PALIER_TEST_GIVEN", "").split(",")))
    for name in (*DERIVED, *SLOT_VARIABLES):
        if name not in given:
            os.environ.pop(name, None)

_slot = int(_worker[2:]) if _worker.startswith("gw") and _worker[2:].isdigit() else 0
# Two Redis databases a worker (task broker, cache) from PALIER_TEST_REDIS_DB on, of 16.
_first_db = int(os.environ.get("PALIER_TEST_REDIS_DB", "1"))

os.environ["PALIER_TEST_SLOT"] = str(_slot)
os.environ["PALIER_TEST_BROKER_DB"] = str((_first_db + 2 * _slot) % 16)
os.environ["PALIER_TEST_CACHE_DB"] = str((_first_db + 2 * _slot + 1) % 16)
os.environ.setdefault("PALIER_TEST_REDIS", "redis://127.0.0.1:6379")
