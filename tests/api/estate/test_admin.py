"""The estate's admin pages open, including the register's import and export."""

import pytest
from django.contrib import admin
from django.urls import reverse

from api.estate import models
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db

ESTATE_MODELS = [m for m in admin.site._registry if m._meta.app_label == "estate"]


@pytest.fixture
def staff_client(client, world):
    # Staff reach the admin site with an e-mail login.
    superuser = UserFactory(
        organisation=world.home.organisation,
        role="admin",
        email="root@example.org",
        is_staff=True,
        is_superuser=True,
    )
    client.force_login(superuser)
    return client


@pytest.mark.parametrize("model", ESTATE_MODELS, ids=lambda m: m.__name__)
def test_changelists_open(staff_client, model):
    url = reverse(f"admin:estate_{model._meta.model_name}_changelist")
    assert staff_client.get(url).status_code == 200


def test_register_import_and_export_pages(staff_client):
    assert staff_client.get(reverse("admin:estate_dwelling_import")).status_code == 200
    assert staff_client.get(reverse("admin:estate_dwelling_export")).status_code == 200
    assert models.Dwelling in ESTATE_MODELS
