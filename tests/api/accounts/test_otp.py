"""Phone login by one-time code: request, verify, limits, no enumeration, languages."""

import re
import time
from datetime import timedelta

import pytest
from django.utils import timezone
from rest_framework.throttling import ScopedRateThrottle
from rest_framework_simplejwt.tokens import AccessToken

from api.accounts.models import LoginCode
from api.accounts.otp import login_code_message, phone_digest
from tests.conftest import client_for
from tests.factories import UserFactory

REQUEST = "/api/v1/auth/otp/request"
VERIFY = "/api/v1/auth/otp/verify"
PHONE = "+33612340001"
UNKNOWN = "+33612349999"


@pytest.fixture
def tenant(organisation):
    return UserFactory(organisation=organisation, phone=PHONE, role="tenant", language="fr")


@pytest.fixture
def throttle_rates(monkeypatch):
    """Lower DRF's per-address rates (read once, when the throttle class is imported)."""

    def lower(**rates):
        monkeypatch.setattr(
            ScopedRateThrottle, "THROTTLE_RATES", {**ScopedRateThrottle.THROTTLE_RATES, **rates}
        )

    return lower


def _code_from(messages) -> str:
    return re.search(r"\b(\d{6})\b", messages[-1]["body"]).group(1)


def _request(client, phone=PHONE):
    return client.post(REQUEST, {"phone": phone}, format="json")


def _verify(client, code, phone=PHONE):
    return client.post(VERIFY, {"phone": phone, "code": code}, format="json")


def _wrong(code: str) -> str:
    return f"{(int(code) + 1) % 1_000_000:06d}"


@pytest.mark.django_db
def test_a_tenant_logs_in_with_a_code_received_by_sms(api_client, tenant, sent_sms):
    answer = _request(api_client)
    assert answer.status_code == 202
    assert set(answer.json()) == {"detail"}

    [message] = sent_sms()
    assert message["to"] == PHONE
    assert message["purpose"] == "login_code"
    code = _code_from(sent_sms())

    pair = _verify(api_client, code)
    assert pair.status_code == 200
    assert set(pair.json()) == {"access", "refresh"}
    assert AccessToken(pair.json()["access"])["user_id"] == str(tenant.id)
    tenant.refresh_from_db()
    assert tenant.last_login is not None

    me = client_for(tenant).get("/api/v1/me/")
    assert me.status_code == 200


@pytest.mark.django_db
def test_the_code_is_six_digits_stored_only_as_a_hash(api_client, tenant, sent_sms):
    _request(api_client)
    code = _code_from(sent_sms())
    assert re.fullmatch(r"\d{6}", code)
    row = LoginCode.objects.get()
    assert row.user == tenant
    assert code not in row.code_hash
    assert len(row.code_hash) == 64
    assert row.phone_digest == phone_digest(PHONE)
    assert PHONE not in row.phone_digest
    assert (
        timedelta(minutes=4, seconds=59)
        < row.expires_at - row.created_at
        <= timedelta(minutes=5, seconds=1)
    )


@pytest.mark.django_db
def test_a_french_national_number_is_accepted_and_normalised(api_client, tenant, sent_sms):
    assert _request(api_client, phone="06 12 34 00 01").status_code == 202
    assert sent_sms()[0]["to"] == PHONE
    assert _verify(api_client, _code_from(sent_sms()), phone="0612340001").status_code == 200


@pytest.mark.django_db
@pytest.mark.parametrize("phone", ["", "12", "+33 1", "not a phone", "+999123456789", "0" * 40])
def test_invalid_numbers_are_refused_in_the_error_shape(api_client, phone):
    answer = _request(api_client, phone=phone)
    assert answer.status_code == 400
    body = answer.json()
    assert body["code"] == "validation_error"
    assert "phone" in body["fields"]


@pytest.mark.django_db
@pytest.mark.parametrize("code", ["12345", "1234567", "abcdef", "12 456", ""])
def test_malformed_codes_are_refused(api_client, tenant, code):
    answer = _verify(api_client, code)
    assert answer.status_code == 400
    assert "code" in answer.json()["fields"]


@pytest.mark.django_db
def test_a_code_works_once(api_client, tenant, sent_sms):
    _request(api_client)
    code = _code_from(sent_sms())
    assert _verify(api_client, code).status_code == 200
    again = _verify(api_client, code)
    assert again.status_code == 400
    assert again.json()["code"] == "otp_invalid"


@pytest.mark.django_db
def test_a_code_expires_after_five_minutes(api_client, tenant, sent_sms):
    _request(api_client)
    code = _code_from(sent_sms())
    LoginCode.objects.update(expires_at=timezone.now() - timedelta(seconds=1))
    answer = _verify(api_client, code)
    assert answer.status_code == 400
    assert answer.json()["code"] == "otp_invalid"


@pytest.mark.django_db
def test_only_the_newest_code_counts(api_client, tenant, sent_sms):
    _request(api_client)
    first = _code_from(sent_sms())
    _request(api_client)
    second = _code_from(sent_sms())
    if first != second:
        assert _verify(api_client, first).status_code == 400
    assert _verify(api_client, second).status_code == 200


@pytest.mark.django_db
def test_five_wrong_tries_spend_the_code(api_client, tenant, sent_sms):
    _request(api_client)
    code = _code_from(sent_sms())
    for _ in range(5):
        wrong = _verify(api_client, _wrong(code))
        assert wrong.status_code == 400
        assert wrong.json()["code"] == "otp_invalid"
    sixth = _verify(api_client, code)
    assert sixth.status_code == 429
    assert sixth.json()["code"] == "otp_attempts_exhausted"
    assert "access" not in sixth.json()


@pytest.mark.django_db
def test_wrong_codes_slow_down_the_next_try(api_client, tenant, sent_sms, settings):
    settings.OTP_THROTTLE_FACTOR = 1
    _request(api_client)
    code = _code_from(sent_sms())
    assert _verify(api_client, _wrong(code)).status_code == 400
    too_soon = _verify(api_client, code)
    assert too_soon.status_code == 429
    assert too_soon.json()["code"] == "otp_wait"
    assert int(too_soon.headers["Retry-After"]) >= 1
    LoginCode.objects.update(throttling_failure_timestamp=timezone.now() - timedelta(seconds=2))
    assert _verify(api_client, code).status_code == 200


@pytest.mark.django_db
def test_at_most_five_codes_per_number_per_day(api_client, tenant, sent_sms):
    for _ in range(5):
        assert _request(api_client).status_code == 202
    sixth = _request(api_client)
    assert sixth.status_code == 429
    assert sixth.json()["code"] == "otp_number_limit"
    assert int(sixth.headers["Retry-After"]) > 23 * 3600
    assert len(sent_sms()) == 5

    # The window slides: once the oldest code is a day old, one more may be sent.
    oldest = LoginCode.objects.order_by("created_at").first()
    LoginCode.objects.filter(pk=oldest.pk).update(created_at=timezone.now() - timedelta(hours=25))
    assert _request(api_client).status_code == 202
    assert len(sent_sms()) == 6


@pytest.mark.django_db
def test_unknown_numbers_get_the_same_answers_and_no_sms(api_client, tenant, sent_sms):
    known = [_request(api_client, PHONE) for _ in range(6)]
    unknown = [_request(api_client, UNKNOWN) for _ in range(6)]
    assert [r.status_code for r in known] == [r.status_code for r in unknown]
    assert [r.json() for r in known] == [r.json() for r in unknown]
    assert {m["to"] for m in sent_sms()} == {PHONE}, "no SMS ever goes to an unknown number"

    # Verifying behaves the same too, try for try.
    LoginCode.objects.all().delete()
    _request(api_client, PHONE)
    _request(api_client, UNKNOWN)
    code = _code_from(sent_sms())
    for _ in range(6):
        a, b = _verify(api_client, _wrong(code), PHONE), _verify(api_client, _wrong(code), UNKNOWN)
        assert (a.status_code, a.json()) == (b.status_code, b.json())


@pytest.mark.django_db
def test_unknown_numbers_take_as_long_as_known_ones(api_client, tenant, settings):
    settings.OTP_REQUEST_MIN_SECONDS = 0.4

    def timed(phone):
        started = time.monotonic()
        assert _request(api_client, phone).status_code == 202
        return time.monotonic() - started

    # Both are padded to the same floor; no upper bound is asserted (a loaded machine is slow).
    assert timed(PHONE) >= 0.4
    assert timed(UNKNOWN) >= 0.4


@pytest.mark.django_db
def test_unknown_numbers_wait_as_long_as_a_slow_provider_takes(api_client, tenant, settings):
    from django.core.cache import cache

    from api.accounts.sms import SEND_SECONDS_KEY

    settings.OTP_REQUEST_MIN_SECONDS = 0.05
    cache.set(SEND_SECONDS_KEY, 0.4)
    started = time.monotonic()
    _request(api_client, UNKNOWN)
    assert time.monotonic() - started >= 0.4


@pytest.mark.django_db
@pytest.mark.parametrize("role", ["agency_staff", "manager", "admin"])
def test_roles_with_wide_access_cannot_log_in_by_sms(api_client, organisation, sent_sms, role):
    UserFactory(organisation=organisation, phone=PHONE, role=role, email=f"{role}@x.example")
    assert _request(api_client).status_code == 202
    assert sent_sms() == []


@pytest.mark.django_db
def test_an_inactive_person_gets_no_code(api_client, organisation, sent_sms):
    UserFactory(organisation=organisation, phone=PHONE, is_active=False)
    assert _request(api_client).status_code == 202
    assert sent_sms() == []


@pytest.mark.django_db
def test_a_person_deactivated_after_the_request_cannot_log_in(api_client, tenant, sent_sms):
    _request(api_client)
    tenant.is_active = False
    tenant.save()
    assert _verify(api_client, _code_from(sent_sms())).status_code == 400


@pytest.mark.django_db
def test_requests_are_limited_per_address(api_client, tenant, throttle_rates):
    throttle_rates(otp_ip="3/hour")
    numbers = ["+33612340011", "+33612340012", "+33612340013"]
    for number in numbers:
        assert _request(api_client, number).status_code == 202
    refused = api_client.post(
        REQUEST, {"phone": "+33612340014"}, format="json", HTTP_X_FORWARDED_FOR="203.0.113.9"
    )
    assert refused.status_code == 429, "a forged X-Forwarded-For does not reset the limit"
    assert refused.json()["code"] == "throttled"
    assert "Retry-After" in refused.headers


@pytest.mark.django_db
def test_verification_is_limited_per_address(api_client, tenant, throttle_rates):
    throttle_rates(otp_verify_ip="2/hour")
    assert _verify(api_client, "000000").status_code == 400
    assert _verify(api_client, "000000", phone="+33612340002").status_code == 400
    assert _verify(api_client, "000000", phone="+33612340003").status_code == 429


@pytest.mark.django_db
def test_when_the_sms_budget_is_spent_requests_are_refused_for_every_number(
    api_client, tenant, settings, sent_sms
):
    settings.SMS_DAILY_BUDGET = 1
    assert _request(api_client).status_code == 202
    for phone in (PHONE, UNKNOWN):
        refused = _request(api_client, phone)
        assert refused.status_code == 429
        assert refused.json()["code"] == "sms_unavailable"
    assert len(sent_sms()) == 1


@pytest.mark.django_db
def test_a_provider_failure_gives_the_same_answer(api_client, tenant, settings, caplog):
    settings.SMS_BACKEND = "api.accounts.sms.HttpSMSBackend"
    settings.SMS_PROVIDER_URL = "http://127.0.0.1:9/unreachable"
    settings.SMS_PROVIDER_TOKEN = "t"
    settings.SMS_PROVIDER_TIMEOUT = 0.5
    answer = _request(api_client)
    assert answer.status_code == 202
    assert "Login code for +336******01 not sent" in caplog.text
    assert LoginCode.objects.get().user == tenant


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("language", "expected"),
    [
        ("fr", "Palier : votre code de connexion est"),
        ("fr-falc", "Ne donnez ce code à personne"),
        ("en", "Palier: your login code is"),
        ("ar", "رمز الدخول"),
    ],
)
def test_the_sms_speaks_the_persons_language(
    api_client, organisation, sent_sms, language, expected
):
    UserFactory(organisation=organisation, phone=PHONE, language=language)
    _request(api_client)
    body = sent_sms()[0]["body"]
    assert expected in body
    assert re.search(r"\b\d{6}\b", body)


def test_every_language_has_its_own_text():
    texts = {
        lang: login_code_message("123456", language=lang) for lang in ["fr", "fr-falc", "en", "ar"]
    }
    assert len(set(texts.values())) == 4
    assert all("123456" in text for text in texts.values())


@pytest.mark.django_db(transaction=True)
def test_concurrent_requests_cannot_exceed_the_daily_limit(tenant, sent_sms):
    import threading

    from django.db import connection

    from api.accounts.services import LimitReached, otp_request

    outcomes = []

    def request():
        try:
            otp_request(phone=PHONE)
            outcomes.append("sent")
        except LimitReached:
            outcomes.append("refused")
        finally:
            connection.close()

    threads = [threading.Thread(target=request) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert outcomes.count("sent") == 5
    assert outcomes.count("refused") == 3
    assert len(sent_sms()) == 5
