"""The sensitive free-text warning: the word list's recall on the sample notes, and its matching."""

import csv
from pathlib import Path

import pytest

from api.core.sensitive_text import (
    CATEGORY_LABELS,
    SensitiveContent,
    acknowledged,
    normalise,
    sensitive_text_check,
    sensitive_text_findings,
    word_list,
)

CORPUS = Path(__file__).resolve().parents[2] / "data" / "sensitive_notes.csv"


def _corpus() -> list[dict]:
    with CORPUS.open(encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


def test_the_corpus_is_large_and_labelled():
    rows = _corpus()
    assert len(rows) >= 150
    labels = {row["label"] for row in rows}
    assert labels == {*CATEGORY_LABELS, "none"}
    assert sum(row["label"] != "none" for row in rows) >= 100


def test_recall_on_the_sample_notes_is_at_least_90_percent():
    sensitive = [row for row in _corpus() if row["label"] != "none"]
    found = [row for row in sensitive if sensitive_text_findings(row["text"])]
    recall = len(found) / len(sensitive)
    assert recall >= 0.90, f"recall {recall:.1%}"
    # The category found is the one the note was labelled with.
    right = [
        r for r in found if r["label"] in {f.category for f in sensitive_text_findings(r["text"])}
    ]
    assert len(right) / len(found) >= 0.95


def test_precision_on_the_sample_notes_is_reported_and_high():
    rows = _corpus()
    flagged = [row for row in rows if sensitive_text_findings(row["text"])]
    precision = sum(row["label"] != "none" for row in flagged) / len(flagged)
    assert precision >= 0.85, f"precision {precision:.1%}"


@pytest.mark.parametrize(
    ("text", "category", "excerpt"),
    [
        ("Mme est DIABÉTIQUE", "health", "DIABÉTIQUE"),
        ("il s'est fait opérer", "health", "opérer"),
        ("famille musulmane", "religion", "musulmane"),
        ("un Œcuménique... non : une secte", "religion", "secte"),
        ("le fils deale", "offence", "deale"),
        ("il est homosexuel", "sexual_orientation", "homosexuel"),
        ("militant CGT", "political", "militant"),
        ("locataire hystérique", "judgment", "hystérique"),
        ("famille d'origine étrangère", "origin", "origine étrangère"),
    ],
)
def test_matching_ignores_case_and_accents_and_keeps_the_original_excerpt(text, category, excerpt):
    findings = sensitive_text_findings(text)
    assert (category, excerpt) in {(f.category, f.excerpt) for f in findings}


@pytest.mark.parametrize(
    "text",
    [
        "Porte condamnée pendant les travaux",
        "L'origine de la fuite est au 5e",
        "Douche à l'italienne, WC à la turque",
        "Rue de l'Église, bâtiment B",
        "Le secteur nord",
        "maladroitement posé",  # a word that only starts like a listed one
        "Syndicat de copropriété",
        "",
    ],
)
def test_ordinary_landlord_wording_is_not_flagged(text):
    assert sensitive_text_findings(text) == []


def test_several_findings_come_in_reading_order_once_each():
    findings = sensitive_text_findings("Malade, musulman, malade encore et MALADE.")
    assert [(f.category, f.excerpt.lower()) for f in findings] == [
        ("health", "malade"),
        ("religion", "musulman"),
    ]


def test_normalise_maps_every_character_back_to_the_text():
    folded, where = normalise("Cœur  fragile — à l'hôpital")
    assert folded == "coeur fragile a l hopital"
    assert len(where) == len(folded)


def test_the_word_list_compiles_into_known_categories():
    ignore, categories = word_list()
    assert ignore is not None
    assert set(categories) == set(CATEGORY_LABELS)


def test_the_check_names_fields_and_categories_unless_acknowledged():
    with pytest.raises(SensitiveContent) as refused:
        sensitive_text_check({"text": "Il est sous dialyse", "note": "rien"})
    assert refused.value.code == "sensitive_content"
    assert list(refused.value.fields) == ["text"]
    assert "health" in refused.value.fields["text"][0]
    assert refused.value.categories == ["health"]
    sensitive_text_check({"text": "Il est sous dialyse"}, acknowledge=True)


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        ({"acknowledge_sensitive": True}, True),
        ({"acknowledge_sensitive": "true"}, True),
        ({"acknowledge_sensitive": False}, False),
        ({"acknowledge_sensitive": {"x": 1}}, False),
        ({}, False),
        (["not", "a", "dict"], False),
    ],
)
def test_acknowledgement_is_read_safely(data, expected):
    assert acknowledged(data) is expected


# --- Staff free text through the API ----------------------------------------------------------


@pytest.fixture
def ticket_world(db):
    from tests.factories.estate import CaretakerAssignmentFactory, place_factory
    from tests.factories.tickets import TicketFactory, ensure_standard_tree, standard_category

    ensure_standard_tree()
    home = place_factory()
    caretaker = CaretakerAssignmentFactory(residence=home.residence).caretaker
    ticket = TicketFactory(
        dwelling=home.dwelling, category=standard_category("plomberie-fuite"), reporter=home.tenant
    )
    return home, caretaker, ticket


def _comments(ticket) -> str:
    return f"/api/v1/tickets/{ticket.id}/comments/"


def test_a_staff_comment_that_seems_sensitive_is_refused_until_acknowledged(ticket_world):
    from tests.conftest import client_for

    _home, caretaker, ticket = ticket_world
    client = client_for(caretaker)
    text = "Monsieur est sous dialyse, passer le matin."
    refused = client.post(_comments(ticket), {"text": text, "public": False}, format="json")
    assert refused.status_code == 400
    body = refused.json()
    assert body["code"] == "sensitive_content"
    assert "health" in body["fields"]["text"][0]
    assert "dialyse" in body["fields"]["text"][0]
    assert not ticket.events.filter(note=text).exists()

    saved = client.post(
        _comments(ticket),
        {"text": text, "public": False, "acknowledge_sensitive": True},
        format="json",
    )
    assert saved.status_code == 201
    assert ticket.events.filter(note=text).exists()


def test_a_plain_staff_comment_is_saved_at_once(ticket_world):
    from tests.conftest import client_for

    _home, caretaker, ticket = ticket_world
    answer = client_for(caretaker).post(
        _comments(ticket), {"text": "Joint changé, fuite réparée."}, format="json"
    )
    assert answer.status_code == 201


def test_a_tenants_own_words_are_never_held_back(ticket_world):
    from tests.conftest import client_for

    home, _caretaker, ticket = ticket_world
    answer = client_for(home.tenant).post(
        _comments(ticket), {"text": "Je suis malade à cause du froid."}, format="json"
    )
    assert answer.status_code == 201


def test_nested_free_text_is_checked_at_its_dotted_path():
    from types import SimpleNamespace

    from api.core.sensitive_text import staff_text_guard

    staff = SimpleNamespace(is_authenticated=True, role="caretaker", is_staff=False)
    request = SimpleNamespace(user=staff, data={})
    data = {"note": "RAS", "answers": [{"comment": "propre"}, {"comment": "le 3e deale ici"}]}
    with pytest.raises(SensitiveContent) as refused:
        staff_text_guard(request, data)
    assert list(refused.value.fields) == ["answers.1.comment"]
    assert refused.value.categories == ["offence"]
    tenant = SimpleNamespace(user=SimpleNamespace(**{**vars(staff), "role": "tenant"}), data={})
    staff_text_guard(tenant, data)
    acknowledged_request = SimpleNamespace(user=staff, data={"acknowledge_sensitive": True})
    staff_text_guard(acknowledged_request, data)
