"""The tenants' survey SMS: its own words in every language, one segment, a compact link."""

import datetime as dt

import pytest
from django.core import signing

from api.audits import services
from api.notifications import texts
from api.notifications.gsm import segment_info

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("language", ["fr", "fr-falc", "en", "ar"])
def test_the_survey_sms_fits_one_segment_with_its_link(site, settings, language):
    settings.PUBLIC_BASE_URL = "https://palier.bailleur-exemple.fr"
    url = services.survey_url(person=site.tenant, entrance=site.entrance)
    words = texts.render("cleanliness.survey", {"url": url}, language)
    english = texts.render("cleanliness.survey", {"url": url}, "en")
    assert words.sms.endswith(url) and url in words.body
    assert "%(" not in words.title + words.body + words.sms
    if language != "en":
        assert words.title != english.title and words.body != english.body
    info = segment_info(words.sms)
    if language == "ar":
        # The link alone outgrows a 70-unit UCS-2 segment.
        assert info.encoding == "UCS-2" and info.segments <= 3
    else:
        assert info.encoding == "GSM-7" and info.segments == 1, (len(words.sms), words.sms)


def test_the_invitation_uses_the_survey_event(site):
    from api.notifications.models import Notification

    assert services.survey_invitations_send(entrance=site.entrance) == 1
    note = Notification.objects.get(recipient=site.tenant)
    assert note.event == "cleanliness.survey"
    assert "/api/v1/cleanliness-surveys/sms/" in note.body


def test_links_expire_and_earlier_signed_links_still_open(site, api_client):
    old = services.survey_token(
        person=site.tenant, entrance=site.entrance, day=dt.date.today() - dt.timedelta(days=20)
    )
    assert api_client.get(f"/api/v1/cleanliness-surveys/sms/{old}/").status_code == 404
    fresh = services.survey_token(person=site.tenant, entrance=site.entrance)
    assert len(fresh) == 56
    tampered = fresh[:-2] + ("AA" if not fresh.endswith("AA") else "BB")
    assert api_client.get(f"/api/v1/cleanliness-surveys/sms/{tampered}/").status_code == 404
    signed = signing.dumps(
        {"p": str(site.tenant.pk), "e": str(site.entrance.pk)}, salt=services.SURVEY_SALT
    )
    assert api_client.get(f"/api/v1/cleanliness-surveys/sms/{signed}/").status_code == 200
