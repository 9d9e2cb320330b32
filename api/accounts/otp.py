"""Phone login codes: generation, keyed hashing, limits and the SMS text."""

import hmac
import time
from datetime import timedelta

from django.utils import translation
from django.utils.crypto import salted_hmac
from django.utils.translation import gettext
from django_otp.util import random_number_token

OTP_DIGITS = 6
OTP_LIFETIME = timedelta(minutes=5)
OTP_MAX_ATTEMPTS = 5
OTP_MAX_CODES_PER_DAY = 5
OTP_WINDOW = timedelta(hours=24)
SMS_PURPOSE = "login_code"


def new_code() -> str:
    """Six random digits from the system's secure generator."""
    return random_number_token(OTP_DIGITS)


def phone_digest(e164: str) -> str:
    """A keyed hash of a number: counts requests per number without storing unknown numbers."""
    return salted_hmac("palier.accounts.otp.phone", e164, algorithm="sha256").hexdigest()


def code_hash(code: str, *, salt: str) -> str:
    """A keyed hash of a code: a copy of the table alone cannot be brute-forced offline."""
    return salted_hmac("palier.accounts.otp.code", f"{salt}:{code}", algorithm="sha256").hexdigest()


def code_matches(code: str, *, salt: str, hashed: str) -> bool:
    """Constant-time comparison of a code with its stored hash."""
    return hmac.compare_digest(code_hash(code, salt=salt), hashed)


def login_code_message(code: str, *, language: str) -> str:
    """The SMS carrying a code, in the person's language."""
    with translation.override(language):
        return gettext(
            "Palier: your login code is %(code)s. It is valid for %(minutes)d minutes. "
            "Never give it to anyone."
        ) % {"code": code, "minutes": int(OTP_LIFETIME.total_seconds() // 60)}


def wait_until(started: float, seconds: float) -> None:
    """Sleep until `seconds` have passed since the monotonic time `started`."""
    remaining = seconds - (time.monotonic() - started)
    if remaining > 0:
        time.sleep(remaining)
