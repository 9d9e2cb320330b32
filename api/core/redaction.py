"""Keep secrets out of the logs: tokens, login codes, passwords, keys and full phone numbers.

Logs travel further than the database (aggregators, support tickets, screenshots), so every
record is cleaned where it is made: `install()` wraps the log record factory, so the cleaning
holds for every logger and handler, third-party ones included. Code should still never log a
secret; this is the net under it, and tests/test_log_hygiene.py checks both.
"""

import logging
import re

REDACTED = "[redacted]"

# Compact JWS/JWT: three base64url parts, the first a JSON header ("eyJ" is '{"').
JWT = re.compile(r"eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]*")
AUTHORIZATION = re.compile(r"(?i)\b(bearer|basic|token|apikey)\s+[A-Za-z0-9._~+/=-]{8,}")
# A login code next to the word that names it ("code is 123456", "code de connexion : 123456").
LOGIN_CODE = re.compile(r"(?i)\b(code|otp|pin)\b([^0-9\n]{0,30})\b\d{4,8}\b")
# key=value or "key": "value" pairs whose value is a secret.
SECRET_PAIR = re.compile(
    r"(?i)(\"?\b(?:password|passwd|pwd|secret|client_secret|token|api[_-]?key|"
    r"authorization|signature|signing_key|private_key)\b\"?\s*[:=]\s*\"?)"
    r"([^\s\"'&,;}]{4,})"
)
# E.164 phone numbers: the country code and the last two digits stay, for support.
PHONE = re.compile(r"(?<![\w+])\+(\d{2})(\d{5,11})(\d{2})\b")


def redact(text: str) -> str:
    """The text with tokens, codes, secrets and phone numbers masked."""
    text = JWT.sub("[jwt]", text)
    text = AUTHORIZATION.sub(lambda m: f"{m.group(1)} {REDACTED}", text)
    text = SECRET_PAIR.sub(lambda m: f"{m.group(1)}{REDACTED}", text)
    text = LOGIN_CODE.sub(lambda m: f"{m.group(1)}{m.group(2)}{REDACTED}", text)
    return PHONE.sub(lambda m: f"+{m.group(1)}{'*' * len(m.group(2))}{m.group(3)}", text)


def _clean(record: logging.LogRecord) -> None:
    try:
        message = record.getMessage()
    except Exception:  # noqa: BLE001 - a badly formatted record is logging's to report
        return
    cleaned = redact(message)
    if cleaned != message:
        record.msg = cleaned
        record.args = ()


_installed = False


def install() -> None:
    """Clean every log record from now on, in this process (once, however often called)."""
    global _installed
    if _installed:
        return
    previous = logging.getLogRecordFactory()

    def factory(*args, **kwargs) -> logging.LogRecord:
        record = previous(*args, **kwargs)
        _clean(record)
        return record

    logging.setLogRecordFactory(factory)
    _installed = True
