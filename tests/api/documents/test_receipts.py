"""Rent receipts: ledger import from the accounting system, PDF quittances, balances."""

import datetime as dt
import io
from decimal import Decimal

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from pypdf import PdfReader

from api.documents.models import LedgerImport, RentLedgerLine, RentReceipt
from api.documents.services import receipt_generate, rent_ledger_import
from tests.conftest import client_for
from tests.factories import place_factory
from tests.factories.documents import (
    LandlordProfileFactory,
    RentLedgerLineFactory,
    RentReceiptFactory,
)
from tests.factories.estate import AgencyMembershipFactory, HouseholdMemberFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def home():
    place = place_factory()
    place.tenant.first_name, place.tenant.last_name = "Fatima", "Benali"
    place.tenant.save()
    LandlordProfileFactory(organisation=place.organisation)
    return place


@pytest.fixture
def staff(home):
    return AgencyMembershipFactory(agency=home.agency).user


def _pdf_text(receipt) -> str:
    with receipt.file.open("rb") as handle:
        data = handle.read()
    assert data.startswith(b"%PDF-")
    return "\n".join(page.extract_text() for page in PdfReader(io.BytesIO(data)).pages)


def test_a_quittance_carries_what_the_law_asks(home):
    co_holder = HouseholdMemberFactory(lease=home.lease, relation="co_holder").person
    line = RentLedgerLineFactory(
        lease=home.lease,
        period=dt.date(2026, 5, 1),
        rent=Decimal("412.30"),
        charges=Decimal("87.70"),
        amount_paid=Decimal("500.00"),
        payment_date=dt.date(2026, 5, 5),
    )
    receipt = receipt_generate(line=line)
    assert receipt.kind == "quittance"
    text = " ".join(_pdf_text(receipt).split())
    landlord = home.organisation.landlord_profile
    for expected in (
        "Quittance de loyer",
        landlord.legal_name,
        "12 avenue de la République",
        "93200 Saint-Denis",
        "Fatima Benali",
        co_holder.full_name,
        home.dwelling.reference,
        home.residence.name,
        "1 mai 2026",
        "31 mai 2026",
        "412,30 €",
        "87,70 €",
        "500,00 €",
        "5 mai 2026",
        "annule tous les reçus",
        "Signature",
    ):
        assert expected in text, expected


def test_a_partial_payment_gets_a_receipt_that_is_not_a_quittance(home):
    line = RentLedgerLineFactory(lease=home.lease, amount_paid=Decimal("200.00"))
    receipt = receipt_generate(line=line)
    assert receipt.kind == "partial"
    text = " ".join(_pdf_text(receipt).split())
    assert "Reçu de paiement partiel" in text
    assert "ne vaut pas quittance" in text
    assert "300,00 €" in text  # what remains due


def test_nothing_paid_means_no_receipt_and_a_missing_landlord_is_refused(home):
    assert receipt_generate(line=RentLedgerLineFactory(lease=home.lease, amount_paid=0)) is None
    elsewhere = place_factory()
    with pytest.raises(Exception, match="landlord"):
        receipt_generate(line=RentLedgerLineFactory(lease=elsewhere.lease))


CSV = (
    "Référence bail;Période;Loyer;Charges;Montant payé;Date paiement\n"
    "{lease};2026-04;412,30;87,70;500,00;05/04/2026\n"
    "{lease};05/2026;412,30;87,70;250,00;2026-05-06\n"
    "INCONNU;2026-05;1;1;0;\n"
    "{lease};2026-06;douze;87,70;0;\n"
    "{lease};2026-04;412,30;87,70;500,00;05/04/2026\n"
)


def test_import_upserts_by_lease_and_month_and_reports_row_errors(
    home, staff, django_capture_on_commit_callbacks
):
    raw = CSV.format(lease=home.lease.reference).encode("cp1252")
    dry = rent_ledger_import(organisation=home.organisation, actor=staff, raw=raw, dry_run=True)
    assert (dry.rows, dry.created, dry.updated) == (5, 2, 0)
    assert not RentLedgerLine.objects.exists()
    assert [(e["row"], e["field"]) for e in dry.errors] == [
        (4, "lease_reference"),
        (5, "rent"),
        (6, "period"),
    ]
    with django_capture_on_commit_callbacks() as callbacks:
        record = rent_ledger_import(
            organisation=home.organisation, actor=staff, raw=raw, file_name="mai.csv"
        )
    assert (record.created, record.updated, record.unchanged) == (2, 0, 0)
    assert len(callbacks) == 1
    line = RentLedgerLine.objects.get(period=dt.date(2026, 5, 1))
    assert line.amount_paid == Decimal("250.00")
    again = rent_ledger_import(organisation=home.organisation, actor=staff, raw=raw)
    assert (again.created, again.updated, again.unchanged) == (0, 0, 2)
    corrected = raw.replace(b"250,00", b"500,00")
    fixed = rent_ledger_import(organisation=home.organisation, actor=staff, raw=corrected)
    assert (fixed.created, fixed.updated) == (0, 1)
    assert LedgerImport.objects.count() == 4


def test_import_finds_the_lease_from_the_dwelling_and_the_month(home, staff):
    raw = (
        "dwelling_reference,period,rent,charges,amount_paid,payment_date\n"
        f"{home.dwelling.reference},2026-05,400.00,80.00,480.00,2026-05-02\n"
    ).encode()
    record = rent_ledger_import(organisation=home.organisation, actor=staff, raw=raw)
    assert record.created == 1
    assert RentLedgerLine.objects.get().lease == home.lease


def test_import_refuses_files_without_the_needed_columns(home, staff):
    with pytest.raises(Exception, match="Missing columns"):
        rent_ledger_import(organisation=home.organisation, actor=staff, raw=b"bail;loyer\nX;1\n")


def test_staff_import_through_the_api(home, staff):
    client = client_for(staff)
    upload = SimpleUploadedFile("mai.csv", CSV.format(lease=home.lease.reference).encode())
    response = client.post(
        "/api/v1/rent-receipts/import/", {"file": upload, "dry_run": "true"}, format="multipart"
    )
    assert response.status_code == 200, response.content
    assert response.json()["created"] == 2
    assert len(response.json()["errors"]) == 3
    assert (
        client_for(home.tenant)
        .post("/api/v1/rent-receipts/import/", {}, format="multipart")
        .status_code
        == 403
    )


def test_tenants_download_their_receipts_only(home, django_assert_max_num_queries):
    receipt = receipt_generate(line=RentLedgerLineFactory(lease=home.lease))
    other = RentReceiptFactory(
        line=RentLedgerLineFactory(lease=place_factory(residence=home.residence).lease)
    )
    client = client_for(home.tenant)
    with django_assert_max_num_queries(6):
        listing = client.get("/api/v1/rent-receipts/").json()
    assert [r["id"] for r in listing["results"]] == [str(receipt.pk)]
    assert listing["results"][0]["rent"] == "412.30"
    pdf = client.get(f"/api/v1/rent-receipts/{receipt.pk}/pdf/")
    assert pdf.status_code == 200
    assert pdf["Content-Type"] == "application/pdf"
    assert b"".join(pdf.streaming_content).startswith(b"%PDF-")
    assert client.get(f"/api/v1/rent-receipts/{other.pk}/pdf/").status_code == 404
    assert client.post(f"/api/v1/rent-receipts/{receipt.pk}/regenerate/").status_code == 403


def test_staff_regenerate_a_receipt_after_a_correction(home, staff):
    line = RentLedgerLineFactory(lease=home.lease, amount_paid=Decimal("100.00"))
    receipt = receipt_generate(line=line)
    RentLedgerLine.objects.filter(pk=line.pk).update(amount_paid=Decimal("500.00"))
    response = client_for(staff).post(f"/api/v1/rent-receipts/{receipt.pk}/regenerate/")
    assert response.status_code == 200
    assert response.json()["kind"] == "quittance"
    assert response.json()["version"] == 2
    assert RentReceipt.objects.count() == 1


def test_the_balance_shows_what_remains_to_pay(home, staff, django_assert_max_num_queries):
    RentLedgerLineFactory(
        lease=home.lease, period=dt.date(2026, 4, 1), amount_paid=Decimal("500.00")
    )
    RentLedgerLineFactory(
        lease=home.lease,
        period=dt.date(2026, 5, 1),
        amount_paid=Decimal("300.00"),
        payment_date=dt.date(2026, 5, 9),
    )
    neighbour = place_factory(residence=home.residence)
    RentLedgerLineFactory(lease=neighbour.lease, amount_paid=0, payment_date=None)
    with django_assert_max_num_queries(6):
        body = client_for(home.tenant).get("/api/v1/balance/").json()
    (mine,) = body["results"]
    assert mine["id"] == str(home.lease.pk)
    assert mine["total_due"] == "1000.00"
    assert mine["total_paid"] == "800.00"
    assert mine["balance"] == "200.00"
    assert mine["last_payment_date"] == "2026-05-09"
    assert mine["last_payment_amount"] == "300.00"
    staff_view = client_for(staff).get("/api/v1/balance/").json()
    assert staff_view["count"] == 2
    from tests.factories.estate import CaretakerAssignmentFactory

    caretaker = CaretakerAssignmentFactory(residence=home.residence).caretaker
    assert client_for(caretaker).get("/api/v1/balance/").status_code == 403
