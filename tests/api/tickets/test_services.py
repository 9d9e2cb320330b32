"""Filing requests and moving them along: capabilities, history, routing, answers."""

import uuid

import pytest

from api.core.exceptions import ServiceError
from api.notifications.models import Notification
from api.tickets import services
from api.tickets.models import (
    CategoryQuestion,
    EventKind,
    Source,
    Status,
    Ticket,
    TicketEvent,
    TicketFollower,
)
from tests.factories import CommonAreaFactory, DelegationFactory
from tests.factories.estate import ContractorFactory, TeamFactory
from tests.factories.tickets import CategoryFactory, CategoryRouteFactory, standard_category

pytestmark = pytest.mark.django_db


def _move(ticket, actor, to_status, **kwargs):
    return services.ticket_transition(ticket=ticket, actor=actor, to_status=to_status, **kwargs)


class TestFiling:
    def test_tenant_files_about_their_dwelling(self, home, file_leak):
        ticket = file_leak()
        assert ticket.status == Status.NEW
        assert ticket.reporter == home.tenant
        assert ticket.created_by == home.tenant
        assert ticket.source == Source.TENANT_APP
        assert (ticket.residence, ticket.building, ticket.entrance) == (
            home.residence,
            home.building,
            home.entrance,
        )
        assert ticket.priority == "urgent"  # the leak category's default
        assert ticket.reference.endswith("-000001")
        created = ticket.events.get()
        assert (created.kind, created.actor, created.to_status) == ("created", home.tenant, "new")

    def test_references_count_up_per_organisation(self, file_leak):
        first, second = file_leak(), file_leak()
        assert int(second.reference[-6:]) == int(first.reference[-6:]) + 1

    def test_another_households_dwelling_does_not_exist_for_a_tenant(self, world, leak):
        with pytest.raises(ServiceError) as refused:
            services.ticket_create(
                actor=world.home.tenant,
                source="tenant_app",
                category=leak,
                dwelling=world.other_tenant.dwelling,
                description="Fuite",
                answers={"room": "wc"},
            )
        assert refused.value.status_code == 404

    def test_a_contractor_does_not_file(self, world, leak):
        with pytest.raises(ServiceError) as refused:
            services.ticket_create(
                actor=world.users["contractor"],
                source="caretaker",
                category=leak,
                dwelling=world.home.dwelling,
                description="Fuite",
            )
        assert refused.value.status_code == 403

    def test_a_delegate_files_for_the_tenant_who_delegated(self, world, leak):
        delegate = world.users["delegate"]
        ticket = services.ticket_create(
            actor=delegate,
            source="tenant_app",
            category=leak,
            dwelling=world.home.dwelling,
            description="Fuite chez ma mère",
            answers={"room": "wc"},
        )
        assert ticket.reporter == world.home.tenant
        event = ticket.events.get(kind=EventKind.CREATED)
        assert (event.actor, event.on_behalf_of) == (delegate, world.home.tenant)

    def test_a_view_only_delegate_may_not_file(self, world, leak):
        delegation = DelegationFactory(grantor=world.home.tenant, can_create_requests=False)
        with pytest.raises(ServiceError) as refused:
            services.ticket_create(
                actor=delegation.delegate,
                source="tenant_app",
                category=leak,
                dwelling=world.home.dwelling,
                description="Fuite",
                answers={"room": "wc"},
            )
        assert refused.value.status_code == 403

    def test_agency_staff_file_on_behalf_of_a_tenant(self, world, leak):
        staff = world.users["agency_staff"]
        ticket = services.ticket_create(
            actor=staff,
            on_behalf_of=world.home.tenant,
            source="agency",
            category=leak,
            dwelling=world.home.dwelling,
            description="Appel téléphonique : fuite",
            answers={"room": "wc"},
        )
        assert (ticket.reporter, ticket.created_by) == (world.home.tenant, staff)
        assert Notification.objects.filter(
            recipient=world.home.tenant, event="ticket.received"
        ).exists()

    def test_only_staff_set_the_priority(self, file_leak):
        with pytest.raises(ServiceError) as refused:
            file_leak(priority="low")
        assert refused.value.field == "priority"

    def test_category_must_fit_the_place(self, home, hall_dirty):
        with pytest.raises(ServiceError) as refused:
            services.ticket_create(
                actor=home.tenant,
                source="tenant_app",
                category=hall_dirty,
                dwelling=home.dwelling,
                description="Sale",
            )
        assert refused.value.field == "category"

    def test_a_common_area_request(self, home, hall_dirty):
        hall = CommonAreaFactory(entrance=home.entrance)
        ticket = services.ticket_create(
            actor=home.tenant,
            source="tenant_app",
            category=hall_dirty,
            common_area=hall,
            description="Le hall n'a pas été nettoyé depuis une semaine.",
        )
        assert (ticket.place_kind, ticket.entrance, ticket.dwelling) == (
            "common_area",
            home.entrance,
            None,
        )

    def test_exactly_one_place(self, home, leak):
        with pytest.raises(ServiceError) as refused:
            services.ticket_create(
                actor=home.tenant,
                source="tenant_app",
                category=leak,
                dwelling=home.dwelling,
                building=home.building,
                description="Fuite",
            )
        assert refused.value.field == "place"

    def test_another_organisations_category_is_unknown(self, home):
        foreign = CategoryFactory()
        with pytest.raises(ServiceError) as refused:
            services.ticket_create(
                actor=home.tenant,
                source="tenant_app",
                category=foreign,
                dwelling=home.dwelling,
                description="x",
            )
        assert refused.value.field == "category"


class TestAnswers:
    def test_required_answers(self, file_leak):
        with pytest.raises(ServiceError) as refused:
            file_leak(answers={})
        assert refused.value.field == "answers.room"

    def test_choices_types_and_unknown_questions(self, file_leak):
        for answers, field in [
            ({"room": "garage"}, "answers.room"),
            ({"room": "wc", "water_off": "yes"}, "answers.water_off"),
            ({"room": "wc", "colour": "blue"}, "answers.colour"),
        ]:
            with pytest.raises(ServiceError) as refused:
                file_leak(answers=answers)
            assert refused.value.field == field

    def test_numbers_in_range_and_text_trimmed(self, home):
        category = CategoryFactory(organisation=home.organisation)
        CategoryQuestion.objects.create(
            category=category,
            key="temp",
            kind="number",
            text="Température",
            min_value=0,
            max_value=35,
        )
        CategoryQuestion.objects.create(category=category, key="code", kind="text", text="Code")
        clean = services.answers_validate(
            category=category, answers={"temp": "19.5", "code": " F28 "}
        )
        assert clean == {"temp": 19.5, "code": "F28"}
        for bad in (40, "NaN", True, "x"):
            with pytest.raises(ServiceError):
                services.answers_validate(category=category, answers={"temp": bad})

    def test_a_family_question_applies_to_its_children(self, home):
        parent = CategoryFactory(organisation=home.organisation)
        child = CategoryFactory(organisation=home.organisation, parent=parent)
        CategoryQuestion.objects.create(
            category=parent, key="since", kind="text", text="Depuis quand ?", required=True
        )
        with pytest.raises(ServiceError) as refused:
            services.answers_validate(category=child, answers={})
        assert refused.value.field == "answers.since"


class TestClientIds:
    def test_a_replay_returns_the_same_request(self, file_leak):
        client_id = uuid.uuid4()
        first = file_leak(client_id=client_id)
        again = file_leak(client_id=client_id)
        assert first.pk == again.pk == client_id
        assert Ticket.objects.count() == 1

    def test_someone_elses_id_is_a_conflict(self, world, file_leak, leak):
        client_id = uuid.uuid4()
        file_leak(client_id=client_id)
        with pytest.raises(ServiceError) as refused:
            services.ticket_create(
                actor=world.users["caretaker"],
                source="caretaker",
                category=leak,
                dwelling=world.home.dwelling,
                description="Fuite",
                answers={"room": "wc"},
                client_id=client_id,
            )
        assert refused.value.status_code == 409


class TestRouting:
    def test_residence_route_beats_the_organisation_default(self, home, leak):
        team = TeamFactory(organisation=home.organisation)
        contractor = ContractorFactory(organisation=home.organisation, trade="other")
        CategoryRouteFactory(organisation=home.organisation, category=leak, contractor=contractor)
        CategoryRouteFactory(
            organisation=home.organisation, category=leak, residence=home.residence, team=team
        )
        route = services.route_for(category=leak, residence=home.residence)
        assert route.team == team

    def test_a_route_on_the_family_applies_to_its_children(self, home, file_leak):
        contractor = ContractorFactory(organisation=home.organisation, trade="other")
        CategoryRouteFactory(
            organisation=home.organisation,
            category=standard_category("plomberie"),
            contractor=contractor,
        )
        ticket = file_leak()
        assert ticket.assigned_contractor == contractor
        assert ticket.events.filter(kind=EventKind.ASSIGNED, public=False).exists()


class TestTransitions:
    def test_the_happy_path_records_every_step(self, world, file_leak):
        ticket = file_leak()
        caretaker, technician = world.users["caretaker"], world.users["technician"]
        _move(ticket, caretaker, "acknowledged", note="Je passe voir.")
        _move(ticket, technician, "scheduled")
        _move(ticket, technician, "in_progress")
        _move(ticket, technician, "resolved", note="Joint changé.")
        services.ticket_confirm(ticket=ticket, actor=world.home.tenant, fixed=True)
        ticket.refresh_from_db()
        assert ticket.status == Status.CLOSED
        steps = list(
            TicketEvent.objects.filter(ticket=ticket, kind=EventKind.STATUS).values_list(
                "from_status", "to_status", "actor__role"
            )
        )
        assert steps == [
            ("new", "acknowledged", "caretaker"),
            ("acknowledged", "scheduled", "technician"),
            ("scheduled", "in_progress", "technician"),
            ("in_progress", "resolved", "technician"),
            ("resolved", "closed", "tenant"),
        ]
        assert ticket.acknowledged_at and ticket.resolved_at and ticket.closed_at
        assert ticket.version > 5

    def test_a_tenant_may_not_move_their_request_along(self, home, file_leak):
        ticket = file_leak()
        with pytest.raises(ServiceError) as refused:
            _move(ticket, home.tenant, "resolved")
        assert refused.value.status_code == 403

    def test_a_tenant_may_withdraw_their_request(self, home, file_leak):
        ticket = _move(file_leak(), home.tenant, "closed", note="Réparé par moi-même.")
        assert ticket.status == Status.CLOSED

    def test_impossible_moves_are_conflicts(self, world, file_leak):
        ticket = file_leak()
        with pytest.raises(ServiceError) as refused:
            _move(ticket, world.users["agency_staff"], "reopened")
        assert refused.value.status_code == 409

    def test_waiting_needs_a_reason_and_rejection_a_note(self, world, file_leak):
        ticket = file_leak()
        staff = world.users["agency_staff"]
        with pytest.raises(ServiceError) as refused:
            _move(ticket, staff, "waiting")
        assert refused.value.field == "waiting_reason"
        with pytest.raises(ServiceError) as refused:
            _move(ticket, staff, "rejected")
        assert refused.value.field == "note"

    def test_a_contractor_moves_only_what_is_assigned_to_their_company(self, world, file_leak):
        ticket = file_leak()
        contractor = world.users["contractor"]
        with pytest.raises(ServiceError) as refused:
            _move(ticket, contractor, "acknowledged")
        assert refused.value.status_code == 404
        company = contractor.contractor_memberships.get().contractor
        services.ticket_assign(ticket=ticket, actor=world.users["caretaker"], contractor=company)
        assert _move(ticket, contractor, "acknowledged").status == Status.ACKNOWLEDGED

    def test_a_caretaker_may_not_reject(self, world, file_leak):
        with pytest.raises(ServiceError) as refused:
            _move(file_leak(), world.users["caretaker"], "rejected", note="Non")
        assert refused.value.status_code == 403

    def test_staff_note_can_stay_internal(self, world, file_leak):
        ticket = file_leak()
        _move(
            ticket, world.users["caretaker"], "acknowledged", note="Locataire pénible", public=False
        )
        event = ticket.events.get(kind=EventKind.STATUS)
        assert not event.public
        assert not Notification.objects.filter(
            recipient=world.home.tenant, event="ticket.status_changed"
        ).exists()

    def test_public_moves_reach_the_reporter_and_followers(self, world, file_leak):
        ticket = file_leak()
        neighbour = world.users["delegate"]
        TicketFollower.objects.create(ticket=ticket, user=neighbour)
        _move(ticket, world.users["caretaker"], "acknowledged")
        told = set(
            Notification.objects.filter(event="ticket.status_changed").values_list(
                "recipient", flat=True
            )
        )
        assert told == {world.home.tenant.pk, neighbour.pk}

    def test_a_duplicate_merges_its_people_into_the_original(self, world, file_leak):
        original, repeat = file_leak(), file_leak()
        _move(repeat, world.users["caretaker"], "duplicate", duplicate_of=original)
        repeat.refresh_from_db()
        assert (repeat.status, repeat.duplicate_of) == (Status.DUPLICATE, original)
        assert original.events.filter(kind=EventKind.MERGED).exists()
        with pytest.raises(ServiceError):
            _move(original, world.users["caretaker"], "duplicate", duplicate_of=repeat)

    def test_the_history_is_append_only(self, file_leak):
        event = file_leak().events.get()
        event.note = "changed"
        with pytest.raises(Exception, match="append-only"):
            event.save()

    def test_allowed_transitions_follow_the_role(self, world, file_leak):
        ticket = file_leak()
        assert services.allowed_transitions(actor=world.home.tenant, ticket=ticket) == ["closed"]
        staff = services.allowed_transitions(actor=world.users["agency_staff"], ticket=ticket)
        assert {"acknowledged", "rejected", "closed", "resolved"} <= set(staff)


class TestClosingTheLoop:
    def _resolved(self, world, file_leak):
        ticket = file_leak()
        _move(ticket, world.users["caretaker"], "resolved", note="Fait.")
        return ticket

    def test_resolution_asks_the_tenant_to_confirm(self, world, file_leak):
        self._resolved(world, file_leak)
        notification = Notification.objects.get(
            recipient=world.home.tenant, event="ticket.resolved_confirm_request"
        )
        assert notification.context["reply_fixed"] == "1"

    def test_still_broken_reopens(self, world, file_leak):
        ticket = self._resolved(world, file_leak)
        ticket = services.ticket_confirm(ticket=ticket, actor=world.home.tenant, fixed=False)
        assert (ticket.status, ticket.reopen_count, ticket.confirmation) == (
            Status.REOPENED,
            1,
            "still_broken",
        )

    def test_only_the_household_confirms(self, world, file_leak):
        ticket = self._resolved(world, file_leak)
        with pytest.raises(ServiceError) as refused:
            services.ticket_confirm(ticket=ticket, actor=world.users["caretaker"], fixed=True)
        assert refused.value.status_code == 403

    def test_rating(self, world, file_leak):
        ticket = self._resolved(world, file_leak)
        ticket = services.ticket_rate(
            ticket=ticket, actor=world.home.tenant, rating=4, comment="Rapide"
        )
        assert (ticket.rating, ticket.rating_comment) == (4, "Rapide")
        for bad in (0, 6, True):
            with pytest.raises(ServiceError):
                services.ticket_rate(ticket=ticket, actor=world.home.tenant, rating=bad)

    def test_rating_waits_for_the_work(self, world, file_leak):
        with pytest.raises(ServiceError):
            services.ticket_rate(ticket=file_leak(), actor=world.home.tenant, rating=5)


class TestFollowAndComments:
    def test_me_too(self, world, hall_dirty):
        hall = CommonAreaFactory(entrance=world.home.entrance)
        ticket = services.ticket_create(
            actor=world.users["caretaker"],
            source="caretaker",
            category=hall_dirty,
            common_area=hall,
            description="Hall sale",
        )
        follower, created = services.ticket_follow(ticket=ticket, actor=world.home.tenant)
        assert created and follower.me_too
        _, again = services.ticket_follow(ticket=ticket, actor=world.home.tenant)
        assert not again
        services.ticket_unfollow(ticket=ticket, actor=world.home.tenant)
        assert not ticket.followers.exists()

    def test_following_a_request_out_of_sight_is_not_found(self, world, file_leak):
        ticket = file_leak()
        with pytest.raises(ServiceError) as refused:
            services.ticket_follow(ticket=ticket, actor=world.other_tenant.tenant)
        assert refused.value.status_code == 404

    def test_tenant_comments_are_public_staff_may_keep_theirs_internal(self, world, file_leak):
        ticket = file_leak()
        tenant_comment = services.ticket_comment_add(
            ticket=ticket, actor=world.home.tenant, text="Ça s'aggrave", public=False
        )
        staff_comment = services.ticket_comment_add(
            ticket=ticket, actor=world.users["caretaker"], text="Voir syndic", public=False
        )
        assert tenant_comment.public and not staff_comment.public


class TestSensorRequests:
    def test_a_tenant_filing_the_same_problem_joins_the_sensor_request(self, home, leak):
        fault = uuid.uuid4()
        sensor = services.ticket_create(
            actor=None,
            source="sensor",
            category=leak,
            dwelling=home.dwelling,
            description="Pression basse détectée",
            related_fault_id=fault,
            answers={"room": "cuisine"},
        )
        again = services.ticket_create(
            actor=None,
            source="sensor",
            category=leak,
            dwelling=home.dwelling,
            description="Pression basse détectée",
            related_fault_id=fault,
            answers={"room": "cuisine"},
        )
        assert again.pk == sensor.pk
        joined = services.ticket_create(
            actor=home.tenant,
            source="tenant_app",
            category=leak,
            dwelling=home.dwelling,
            description="J'ai une fuite",
            answers={"room": "cuisine"},
        )
        assert joined.pk == sensor.pk
        assert joined.reporter == home.tenant
        assert Ticket.objects.count() == 1
