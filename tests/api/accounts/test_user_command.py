"""`palier user add`: operators create people and place them in the estate."""

import datetime as dt
from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.utils import timezone

from api.accounts.models import User
from api.estate.models import AgencyMembership, CaretakerAssignment, EstateEvent, HouseholdMember
from tests.factories import OrganisationFactory, ResidenceFactory, place_factory


def _user_add(*args: str) -> str:
    out = StringIO()
    call_command("user", "add", *args, stdout=out)
    return out.getvalue()


@pytest.fixture
def place(db):
    return place_factory()


@pytest.mark.django_db
def test_a_tenant_joins_the_household_of_the_current_lease(place):
    output = _user_add(
        "--role",
        "tenant",
        "--phone",
        "06 12 34 56 78",
        "--name",
        "Amina Ben Ali",
        "--dwelling",
        place.dwelling.reference,
        "--language",
        "ar",
    )
    person = User.objects.get(phone="+33612345678")
    assert (person.first_name, person.last_name) == ("Amina", "Ben Ali")
    assert person.role == "tenant"
    assert person.language == "ar"
    assert person.organisation == place.organisation
    assert person.email is None
    assert not person.has_usable_password()
    member = HouseholdMember.objects.get(person=person)
    assert member.lease == place.lease
    assert member.relation == "occupant"
    assert EstateEvent.objects.filter(kind="member_added", subject_id=place.lease.id).exists()
    assert f"lease {place.lease.reference}" in output
    assert "+33612345678" in output


@pytest.mark.django_db
def test_the_household_relation_can_be_chosen(place):
    _user_add(
        "--role",
        "tenant",
        "--phone",
        "+33612345678",
        "--dwelling",
        place.dwelling.reference,
        "--relation",
        "co_holder",
    )
    assert HouseholdMember.objects.get(person__phone="+33612345678").relation == "co_holder"


@pytest.mark.django_db
def test_a_caretaker_is_assigned_to_a_residence(place):
    output = _user_add(
        "--role", "caretaker", "--phone", "+33600000042", "--residence", place.residence.reference
    )
    caretaker = User.objects.get(phone="+33600000042")
    assert CaretakerAssignment.objects.filter(
        caretaker=caretaker, residence=place.residence
    ).exists()
    assert "assigned to residence" in output
    assert "code sent by SMS" in output


@pytest.mark.django_db
def test_agency_staff_given_a_residence_join_its_agency(place):
    _user_add(
        "--role",
        "agency_staff",
        "--email",
        "Agent@Example.org",
        "--residence",
        place.residence.reference,
    )
    agent = User.objects.get(email="agent@example.org")
    assert AgencyMembership.objects.filter(user=agent, agency=place.agency).exists()


@pytest.mark.django_db
def test_a_manager_needs_an_email_and_is_told_how_to_set_a_password(place):
    with pytest.raises(CommandError, match=r"--email: .*give an e-mail"):
        _user_add("--role", "manager", "--phone", "+33600000043")
    output = _user_add("--role", "manager", "--email", "boss@example.org")
    assert "palier changepassword boss@example.org" in output
    assert User.objects.get(email="boss@example.org").organisation == place.organisation


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--dwelling", "NOPE"], "No dwelling with reference 'NOPE'"),
        (["--residence", "NOPE"], "No residence with reference 'NOPE'"),
        (["--organisation", "nope"], "No organisation with slug 'nope'"),
    ],
)
def test_unknown_references_are_clear_errors(place, args, message):
    with pytest.raises(CommandError, match=message):
        _user_add("--role", "tenant", "--phone", "+33612345678", *args)
    assert not User.objects.filter(phone="+33612345678").exists()


@pytest.mark.django_db
def test_a_dwelling_without_a_lease_in_force_is_refused_and_nothing_is_created(place):
    place.lease.end_date = timezone.localdate() - dt.timedelta(days=1)
    place.lease.save()
    with pytest.raises(CommandError, match="no lease in force today"):
        _user_add(
            "--role", "tenant", "--phone", "+33612345678", "--dwelling", place.dwelling.reference
        )
    assert not User.objects.filter(phone="+33612345678").exists()


@pytest.mark.django_db
def test_a_reference_in_two_organisations_needs_the_organisation(place):
    other = place_factory()
    other.dwelling.reference = place.dwelling.reference
    other.dwelling.save()
    with pytest.raises(CommandError, match="several organisations"):
        _user_add(
            "--role", "tenant", "--phone", "+33612345678", "--dwelling", place.dwelling.reference
        )
    _user_add(
        "--role",
        "tenant",
        "--phone",
        "+33612345678",
        "--dwelling",
        place.dwelling.reference,
        "--organisation",
        other.organisation.slug,
    )
    assert HouseholdMember.objects.get(person__phone="+33612345678").lease == other.lease


@pytest.mark.django_db
def test_several_organisations_and_no_place_needs_the_organisation(place):
    OrganisationFactory()
    with pytest.raises(CommandError, match="choose one with --organisation"):
        _user_add("--role", "tenant", "--phone", "+33612345678")


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--role", "tenant", "--phone", "12"], "--phone: "),
        (["--role", "tenant"], "Give a phone number or an e-mail"),
        (["--role", "tenant", "--email", "not-an-email"], "--email: "),
        (["--role", "caretaker", "--phone", "+33612345678", "--dwelling", "X"], "No dwelling"),
    ],
)
def test_invalid_input_is_a_clear_error(place, args, message):
    with pytest.raises(CommandError, match=message):
        _user_add(*args)


@pytest.mark.django_db
def test_a_caretaker_cannot_join_a_household(place):
    with pytest.raises(CommandError, match="Only tenants join a household"):
        _user_add(
            "--role", "caretaker", "--phone", "+33612345678", "--dwelling", place.dwelling.reference
        )
    assert not User.objects.filter(phone="+33612345678").exists()


@pytest.mark.django_db
def test_a_tenant_cannot_be_assigned_a_residence(place):
    with pytest.raises(CommandError, match="caretakers and agency staff only"):
        _user_add(
            "--role", "tenant", "--phone", "+33612345678", "--residence", place.residence.reference
        )


@pytest.mark.django_db
def test_a_number_already_in_use_is_refused(place):
    with pytest.raises(CommandError, match="already has the number"):
        _user_add("--role", "tenant", "--phone", str(place.tenant.phone))


@pytest.mark.django_db
def test_dwelling_and_residence_are_exclusive(place):
    residence = ResidenceFactory(agency=place.agency)
    with pytest.raises(CommandError, match="not allowed with argument"):
        _user_add(
            "--role",
            "tenant",
            "--phone",
            "+33612345678",
            "--dwelling",
            place.dwelling.reference,
            "--residence",
            residence.reference,
        )


@pytest.mark.django_db
def test_the_palier_entry_point_runs_the_command(place, capsys):
    from api.cli import main

    main(
        [
            "user",
            "add",
            "--role",
            "tenant",
            "--phone",
            "+33612345670",
            "--dwelling",
            place.dwelling.reference,
        ]
    )
    assert "Created tenant" in capsys.readouterr().out
