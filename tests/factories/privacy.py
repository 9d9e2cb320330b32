"""Factories for the privacy app: exports, erasure requests, rectifications."""

import datetime as dt

import factory
from django.core.files.base import ContentFile
from django.utils import timezone
from factory.django import DjangoModelFactory

from api.privacy.models import DataExport, ErasureRequest, ExportStatus, Rectification
from tests.factories.accounts import UserFactory


class DataExportFactory(DjangoModelFactory):
    class Meta:
        model = DataExport

    subject = factory.SubFactory(UserFactory)
    organisation = factory.SelfAttribute("subject.organisation")
    requested_by = factory.SelfAttribute("subject")


def ready_export(subject, **kwargs) -> DataExport:
    """An export whose files exist, as a worker leaves it."""
    export = DataExportFactory(subject=subject, **kwargs)
    export.json_file.save("data.json", ContentFile(b'{"account": {}}'), save=False)
    export.pdf_file.save("data.pdf", ContentFile(b"%PDF-1.7\n"), save=False)
    export.status = ExportStatus.READY
    export.ready_at = timezone.now()
    export.expires_at = timezone.now() + dt.timedelta(hours=24)
    export.save()
    return export


class ErasureRequestFactory(DjangoModelFactory):
    """A recorded request (not executed: the services do that)."""

    class Meta:
        model = ErasureRequest

    subject = factory.SubFactory(UserFactory)
    organisation = factory.SelfAttribute("subject.organisation")
    requested_by = factory.SelfAttribute("subject")
    requested_by_role = "manager"
    reason = "Demande écrite reçue à l'agence."


class RectificationFactory(DjangoModelFactory):
    class Meta:
        model = Rectification

    subject = factory.SubFactory(UserFactory)
    organisation = factory.SelfAttribute("subject.organisation")
    requested_by = factory.SelfAttribute("subject")
    requested_by_role = "manager"
    reason = "Faute de frappe dans le nom."
    fields = ["last_name"]


def seed_fuzz_privacy(organisation, manager) -> None:
    """Exports, erasure requests and rectifications for the API fuzzer (tests/fuzz_data.py)."""
    from api.accounts.services import personal_data_access_record
    from tests.factories.estate import place_factory

    place = place_factory(organisation=organisation)
    ready_export(manager)
    DataExportFactory(subject=manager)
    personal_data_access_record(viewer=manager, subjects=[place.tenant], context="people.detail")
    ErasureRequestFactory(subject=place.tenant, requested_by=manager)
    RectificationFactory(subject=place.tenant, requested_by=manager)
