"""The append-only log of staff reads of people's personal data."""

from datetime import timedelta

import pytest
from django.contrib.admin.sites import site
from django.db import DatabaseError, connection, transaction
from django.test import RequestFactory
from django.utils import timezone

from api.accounts.models import AppendOnlyError, PersonalDataAccess
from api.accounts.selectors import personal_data_accesses_of
from api.accounts.services import personal_data_access_purge, personal_data_access_record
from tests.factories import UserFactory

TABLE = PersonalDataAccess._meta.db_table


@pytest.fixture
def agent(organisation):
    return UserFactory(organisation=organisation, role="agency_staff", email="a@x.example")


@pytest.fixture
def tenants(organisation):
    return UserFactory.create_batch(3, organisation=organisation, role="tenant")


@pytest.mark.django_db
def test_a_staff_read_is_logged_once_per_subject_in_one_query(
    agent, tenants, django_assert_num_queries
):
    with django_assert_num_queries(1):
        personal_data_access_record(
            viewer=agent,
            subjects=[*tenants, tenants[0].id, str(tenants[1].id)],
            context="people.list",
        )
    rows = PersonalDataAccess.objects.order_by("subject__last_name")
    assert rows.count() == 3
    assert {r.subject_id for r in rows} == {t.id for t in tenants}
    row = rows.first()
    assert row.viewer == agent
    assert row.viewer_role == "agency_staff"
    assert row.context == "people.list"
    assert abs(row.at - timezone.now()) < timedelta(seconds=5)


@pytest.mark.django_db
def test_a_queryset_of_subjects_is_accepted(agent, tenants):
    from api.accounts.models import User

    personal_data_access_record(
        viewer=agent, subjects=User.objects.filter(role="tenant"), context="people.list"
    )
    assert PersonalDataAccess.objects.count() == 3


@pytest.mark.django_db
def test_reading_ones_own_data_is_not_logged(agent, tenants, django_assert_num_queries):
    with django_assert_num_queries(0):
        personal_data_access_record(viewer=agent, subjects=[agent], context="me")
    personal_data_access_record(viewer=agent, subjects=[agent, tenants[0]], context="people.list")
    assert list(PersonalDataAccess.objects.values_list("subject_id", flat=True)) == [tenants[0].id]


@pytest.mark.django_db
def test_tenants_and_anonymous_readers_are_not_logged(tenants, django_assert_num_queries):
    from django.contrib.auth.models import AnonymousUser

    with django_assert_num_queries(0):
        personal_data_access_record(viewer=tenants[0], subjects=tenants[1:], context="delegation")
        personal_data_access_record(viewer=AnonymousUser(), subjects=tenants, context="x")
        personal_data_access_record(viewer=None, subjects=tenants, context="x")
    assert not PersonalDataAccess.objects.exists()


@pytest.mark.django_db
@pytest.mark.parametrize("role", ["caretaker", "technician", "contractor", "manager", "admin"])
def test_every_working_role_is_logged(organisation, tenants, role):
    viewer = UserFactory(organisation=organisation, role=role)
    personal_data_access_record(viewer=viewer, subjects=tenants[:1], context="people.detail")
    assert PersonalDataAccess.objects.get().viewer_role == role


@pytest.mark.django_db
def test_rows_cannot_be_changed_or_removed_through_the_orm(agent, tenants):
    personal_data_access_record(viewer=agent, subjects=tenants, context="people.list")
    row = PersonalDataAccess.objects.first()
    row.context = "rewritten"
    with pytest.raises(AppendOnlyError):
        row.save()
    with pytest.raises(AppendOnlyError):
        row.delete()
    with pytest.raises(AppendOnlyError):
        PersonalDataAccess.objects.filter(pk=row.pk).update(context="rewritten")
    with pytest.raises(AppendOnlyError):
        PersonalDataAccess.objects.all().delete()
    assert PersonalDataAccess.objects.filter(context="people.list").count() == 3


@pytest.mark.django_db
def test_the_database_refuses_changes_below_the_orm(agent, tenants):
    assert connection.vendor == "postgresql"
    personal_data_access_record(viewer=agent, subjects=tenants, context="people.list")
    for statement in [f"UPDATE {TABLE} SET context = 'x'", f"DELETE FROM {TABLE}"]:  # noqa: S608
        with (
            pytest.raises(DatabaseError, match="append-only"),
            transaction.atomic(),
            connection.cursor() as cursor,
        ):
            cursor.execute(statement)
    assert PersonalDataAccess.objects.filter(context="people.list").count() == 3


@pytest.mark.django_db
def test_only_the_retention_purge_removes_old_rows(agent, tenants):
    old = timezone.now() - timedelta(days=400)
    PersonalDataAccess.objects.bulk_create(
        [
            PersonalDataAccess(
                viewer=agent, viewer_role="agency_staff", subject=t, context="old", at=old
            )
            for t in tenants
        ]
    )
    personal_data_access_record(viewer=agent, subjects=tenants[:1], context="recent")
    assert personal_data_access_purge(before=timezone.now() - timedelta(days=365)) == 3
    assert list(PersonalDataAccess.objects.values_list("context", flat=True)) == ["recent"]
    # The permission does not outlive the purge's transaction.
    with pytest.raises(DatabaseError), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(f"DELETE FROM {TABLE}")  # noqa: S608


@pytest.mark.django_db
def test_a_persons_log_lists_who_read_what(agent, tenants):
    personal_data_access_record(viewer=agent, subjects=tenants[:1], context="people.detail")
    personal_data_access_record(viewer=agent, subjects=tenants, context="people.list")
    log = list(personal_data_accesses_of(subject=tenants[0]))
    assert [entry.context for entry in log] == ["people.list", "people.detail"]
    assert log[0].viewer == agent


@pytest.mark.django_db
def test_the_admin_shows_the_log_read_only(admin_user, agent, tenants):
    personal_data_access_record(viewer=agent, subjects=tenants, context="people.list")
    model_admin = site._registry[PersonalDataAccess]
    request = RequestFactory().get("/admin/")
    request.user = admin_user
    assert model_admin.has_view_permission(request)
    assert not model_admin.has_add_permission(request)
    assert not model_admin.has_change_permission(request, PersonalDataAccess.objects.first())
    assert not model_admin.has_delete_permission(request, PersonalDataAccess.objects.first())


@pytest.mark.django_db
def test_the_admin_list_page_renders(client, admin_user, agent, tenants):
    admin_user.email = "root@x.example"
    admin_user.save()
    personal_data_access_record(viewer=agent, subjects=tenants, context="people.list")
    client.force_login(admin_user)
    page = client.get("/admin/accounts/personaldataaccess/")
    assert page.status_code == 200
    assert b"people.list" in page.content
