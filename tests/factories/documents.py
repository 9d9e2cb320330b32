"""Factories for rent-ledger lines, receipts and the landlord's profile."""

import datetime as dt
from decimal import Decimal

import factory
from django.core.files.base import ContentFile
from django.utils import timezone
from factory.django import DjangoModelFactory

from api.documents.models import LandlordProfile, RentLedgerLine, RentReceipt


class LandlordProfileFactory(DjangoModelFactory):
    class Meta:
        model = LandlordProfile
        django_get_or_create = ("organisation",)

    organisation = factory.SubFactory("tests.factories.accounts.OrganisationFactory")
    legal_name = factory.LazyAttribute(lambda o: f"{o.organisation.name} OPH")
    address = "12 avenue de la République"
    postcode = "93200"
    city = "Saint-Denis"
    signatory_name = "Claire Martin"
    signatory_title = "Directrice de la gestion locative"


class RentLedgerLineFactory(DjangoModelFactory):
    class Meta:
        model = RentLedgerLine

    lease = factory.SubFactory("tests.factories.estate.LeaseFactory")
    organisation = factory.SelfAttribute("lease.organisation")
    period = factory.LazyFunction(lambda: timezone.localdate().replace(day=1))
    rent = Decimal("412.30")
    charges = Decimal("87.70")
    amount_paid = Decimal("500.00")
    payment_date = factory.LazyAttribute(lambda o: o.period + dt.timedelta(days=4))


class RentReceiptFactory(DjangoModelFactory):
    """A receipt row with a stand-in file (the PDF itself is tested through the service)."""

    class Meta:
        model = RentReceipt

    line = factory.SubFactory(RentLedgerLineFactory)
    lease = factory.SelfAttribute("line.lease")
    organisation = factory.SelfAttribute("line.organisation")
    period = factory.SelfAttribute("line.period")
    kind = "quittance"
    file = factory.LazyFunction(lambda: ContentFile(b"%PDF-1.7\n%%EOF\n", name="quittance.pdf"))
    sha256 = "0" * 64
    generated_at = factory.LazyFunction(timezone.now)
