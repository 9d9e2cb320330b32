"""Words: templates per event in French, easy-to-read French, English and Arabic; SMS
encoding and segments; deep links."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from api.notifications import texts
from api.notifications.gsm import fold_to_gsm7, is_gsm7, segment_info

TYPICAL = {
    "reference": "T-10428",
    "category": "Chauffage",
    "status": "Planifiée",
    "at": "2026-05-12T08:30:00+02:00",
    "summary": "Plus de chauffage",
    "place": "Les Tilleuls, bât. B",
    "expected_end": "2026-05-12T18:00:00+02:00",
    "rule": "Pression basse",
    "severity": "majeure",
    "count": 12,
    "team": "Chauffage Nord",
    "action": "Nettoyer le hall",
    "due_at": "2026-05-14T12:00:00+02:00",
    "title": "Relevé des compteurs",
    "period": "mai 2026",
    "starts_at": "2026-05-12T08:00:00+02:00",
    "ends_at": "2026-05-12T12:00:00+02:00",
    "target": "resolve",
}


@pytest.mark.parametrize("event", sorted(texts.EVENTS))
@pytest.mark.parametrize("language", ["fr", "fr-falc", "en", "ar"])
def test_every_event_is_translated_and_its_sms_is_short(event, language):
    words = texts.render(event, TYPICAL, language)
    english = texts.render(event, TYPICAL, "en")
    assert words.title and words.body and words.sms
    assert "%(" not in words.body + words.sms + words.title
    if language != "en":
        assert words.title != english.title or event == "broadcast.information"
        assert words.body != english.body
    info = segment_info(words.sms)
    if language == "ar":
        assert info.encoding == "UCS-2"
        assert info.segments <= 3
    else:
        # Latin texts are GSM-7 and fit one segment with ordinary values (two with the
        # dates of a planned cut).
        assert info.encoding == "GSM-7", words.sms
        assert info.segments <= (2 if "starts_at" in str(texts.EVENTS[event].extras) else 1), (
            words.sms
        )


def test_french_and_easy_to_read_french_differ_in_style():
    fr = texts.render("broadcast.water_cut", {"place": "Bât. B"}, "fr")
    falc = texts.render("broadcast.water_cut", {"place": "Bât. B"}, "fr-falc")
    assert fr.body == "L'eau sera coupée à Bât. B."
    assert falc.body == "L'eau sera coupée. C'est à Bât. B."
    assert falc.title == "Il n'y aura pas d'eau"


def test_dates_are_written_in_the_persons_language():
    context = {"reference": "T-1", "starts_at": "2026-05-12T08:30:00+02:00"}
    assert "mardi 12 mai à 8h30" in texts.render("appointment.booked", context, "fr").body
    assert "Tuesday 12 May, 8:30" in texts.render("appointment.booked", context, "en").body
    arabic = texts.render("appointment.booked", context, "ar")
    assert arabic.rtl
    assert "مايو" in arabic.body


def test_missing_values_fall_back_to_the_generic_words():
    assert texts.render("ticket.created", {}, "fr").title == "Nouveau message"
    with_title = texts.render("ticket.created", {"title": "Fuite"}, "fr")
    assert with_title.title == "Fuite"
    assert with_title.sms == "Palier : Fuite"


def test_staff_words_use_their_translation_for_the_language():
    context = {
        "place": "Bât. B",
        "message": "Remplissez des bouteilles.",
        "translations": {"ar": "املأوا الزجاجات."},
    }
    assert texts.render("broadcast.water_cut", context, "ar").body.endswith("املأوا الزجاجات.")
    assert texts.render("broadcast.water_cut", context, "en").body.endswith(
        "Remplissez des bouteilles."
    )


def test_codes_are_shown_as_words_and_callers_context_is_understood():
    status = {"reference": "T-1", "status": "in_progress", "waiting_reason": "parts_on_order"}
    assert texts.render("ticket.status_changed", status, "fr").title == "Demande T-1 : en cours"
    assert "une pièce est commandée" in texts.render("ticket.status_changed", status, "fr").body
    incident = {
        "category": "Chauffage",
        "residence": "Les Tilleuls",
        "building": "B",
        "message": "Une pompe est en panne.",
        "expected_end": "2026-05-12T18:00:00+02:00",
    }
    words = texts.render("incident.started", incident, "fr")
    assert words.title == "Incident : Chauffage"
    assert "Les Tilleuls, bât. B" in words.body
    assert "Une pompe est en panne." in words.body
    assert "mardi 12 mai à 18h00" in words.body


def test_unknown_languages_use_french():
    assert texts.render("x", {}, "tlh").language == "fr"


def test_deep_links_open_the_right_screen(settings):
    settings.APP_DEEP_LINK_BASE = "palier://"
    assert texts.deep_link_path("ticket.created", {"ticket_id": "42"}) == "tickets/42"
    assert texts.deep_link_path("ticket.created", {}) == "tickets"
    assert texts.full_deep_link("tickets/42") == "palier://tickets/42"
    assert texts.full_deep_link("https://example.org/x") == "https://example.org/x"
    settings.APP_DEEP_LINK_BASE = "https://app.palier.fr"
    assert texts.full_deep_link("news/1") == "https://app.palier.fr/news/1"


# --- GSM 03.38 ------------------------------------------------------------------------------


def test_gsm7_single_and_multipart_limits():
    assert segment_info("a" * 160).as_dict() == {
        "encoding": "GSM-7",
        "characters": 160,
        "units": 160,
        "segments": 1,
        "per_segment": 160,
        "remaining": 0,
    }
    assert segment_info("a" * 161).segments == 2
    assert segment_info("a" * 306).segments == 2
    assert segment_info("a" * 307).segments == 3


def test_extension_characters_count_twice_and_never_split():
    assert segment_info("€" * 80).units == 160
    assert segment_info("€" * 80).segments == 1
    info = segment_info("a" + "€" * 80)
    assert info.segments == 2
    assert segment_info("€" * 81).segments == 2
    # 153 septets a part: after 152 there is no room for a two-septet character, which goes
    # whole to the next part.
    info = segment_info("a" * 152 + "€" + "a" * 7)
    assert info.segments == 2
    assert info.remaining == 153 - 9


def test_ucs2_limits_and_surrogate_pairs():
    assert segment_info("ا" * 70).segments == 1
    assert segment_info("ا" * 71).segments == 2
    assert segment_info("ا" * 134).segments == 2
    assert segment_info("😀" * 35).units == 70
    assert segment_info("😀" * 35).segments == 1
    assert segment_info("a" * 66 + "😀").segments == 1  # 68 units
    assert segment_info("a" * 69 + "😀").segments == 2  # 71 units, the pair stays whole


def test_folding_keeps_french_in_gsm7():
    assert (
        fold_to_gsm7("Fenêtre à l’étage, chaîne « cassée »")
        == 'Fenetre à l\'étage, chaine " cassée "'
    )
    assert fold_to_gsm7("انقطاع") == "انقطاع"
    assert fold_to_gsm7("Coupure 😀 prévue") == "Coupure 😀 prévue"


@given(st.text(max_size=400))
def test_segment_counts_are_consistent(text):
    info = segment_info(text)
    assert info.encoding == ("GSM-7" if is_gsm7(text) else "UCS-2")
    assert info.segments >= 1
    assert 0 <= info.remaining <= info.per_segment
    single = 160 if info.encoding == "GSM-7" else 70
    assert (info.segments == 1) == (info.units <= single)
