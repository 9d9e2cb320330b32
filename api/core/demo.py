"""Demo data for `palier run`: idempotent, so running it twice changes nothing."""

from django.db import transaction

DEMO_ADMIN_EMAIL = "admin@demo.palier.fr"
DEMO_ADMIN_PASSWORD = "palier-demo-admin"  # noqa: S105 - demo only, printed on screen
DEMO_TENANT_PHONE = "+33600000101"
DEMO_CARETAKER_PHONE = "+33600000001"


@transaction.atomic
def seed_demo() -> dict:
    """Create the demo organisation and its people; return the demo logins."""
    from api.accounts.models import User
    from api.estate.models import Organisation

    organisation, _ = Organisation.objects.get_or_create(
        slug="demo", defaults={"name": "Habitat Démo"}
    )
    if not User.objects.filter(email=DEMO_ADMIN_EMAIL).exists():
        User.objects.create_superuser(
            email=DEMO_ADMIN_EMAIL,
            password=DEMO_ADMIN_PASSWORD,
            organisation=organisation,
            first_name="Admin",
            last_name="Démo",
        )
    from api.estate.demo import seed_demo_estate

    estate_logins = seed_demo_estate(organisation)
    from api.telemetry.demo import seed_demo_devices

    seed_demo_devices(
        organisation=organisation,
        admin=User.objects.get(email=DEMO_ADMIN_EMAIL),
        tenant_phone=DEMO_TENANT_PHONE,
    )
    from api.tickets.demo import seed_demo_tickets

    seed_demo_tickets(
        organisation, tenant_phone=DEMO_TENANT_PHONE, caretaker_phone=DEMO_CARETAKER_PHONE
    )
    from api.audits.demo import seed_demo_audits

    seed_demo_audits(organisation)
    return {
        "admin_email": DEMO_ADMIN_EMAIL,
        "admin_password": DEMO_ADMIN_PASSWORD,
        "tenant_phone": DEMO_TENANT_PHONE,
        "caretaker_phone": DEMO_CARETAKER_PHONE,
        **estate_logins,
    }
