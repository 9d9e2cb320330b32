"""The inventory classifies every field, and docs/privacy.md is generated from it."""

import pytest
from django.core.management import CommandError, call_command

from api.privacy import inventory
from api.privacy.register import REGISTER_PATH, render_register


def test_every_field_of_every_palier_model_is_classified():
    missing = inventory.unclassified_fields()
    assert not missing, (
        "Classify these fields in api/privacy/inventory.py (category, processing; see its "
        "docstring), then run `palier privacy-register`: " + ", ".join(missing)
    )


def test_the_inventory_names_only_existing_fields_and_known_categories():
    assert not inventory.stale_entries(), "Renamed or removed fields still classified"
    assert not inventory.invalid_entries()


def test_the_check_sees_a_new_unclassified_field(monkeypatch):
    del_key = "tickets.Ticket.description"
    fields = dict(inventory.FIELDS)
    fields.pop(del_key)
    monkeypatch.setattr(inventory, "FIELDS", fields)

    assert inventory.unclassified_fields() == [del_key]


def test_technical_fields_are_not_personal_and_personal_ones_have_a_processing():
    user_model = next(m for m in inventory.palier_models() if m._meta.label == "accounts.User")
    by_name = {f.name: f for f in user_model._meta.concrete_fields}
    assert inventory.classification(user_model, by_name["id"]).category == "not_personal"
    phone = inventory.classification(user_model, by_name["phone"])
    assert phone.category == "contact"
    assert inventory.PROCESSINGS[phone.processing].retention


def test_docs_privacy_md_is_up_to_date():
    assert REGISTER_PATH.read_text(encoding="utf-8") == render_register(), (
        "docs/privacy.md is out of date: run `palier privacy-register`"
    )


def test_the_register_says_purposes_retention_sources_and_what_consent_is_needed_for():
    text = render_register()
    for needle in (
        "## Processing activities",
        "**Legal basis**",
        "**Recipients**",
        "Code civil, art. 2224",
        "art. 7-1",
        "logement social",
        "`fault_detection`",
        "What cannot be done without it",
        "| `former_household_contact` |",
    ):
        assert needle in text


def test_the_command_checks_and_writes(tmp_path, monkeypatch):
    target = tmp_path / "privacy.md"
    monkeypatch.setattr("api.privacy.register.REGISTER_PATH", target)
    monkeypatch.setattr("api.privacy.management.commands.privacy_register.REGISTER_PATH", target)
    from api.privacy import register

    assert register.write_register(target) is True
    assert register.write_register(target) is False
    call_command("privacy_register", "--check")


def test_the_check_fails_when_the_register_is_stale(tmp_path, monkeypatch):
    target = tmp_path / "privacy.md"
    target.write_text("# old\n", encoding="utf-8")
    monkeypatch.setattr("api.privacy.management.commands.privacy_register.REGISTER_PATH", target)
    with pytest.raises(CommandError, match="out of date"):
        call_command("privacy_register", "--check")
