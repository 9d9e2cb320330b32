from django.core.management.base import BaseCommand

from api.core.demo import seed_demo


class Command(BaseCommand):
    help = "Create the demo organisation, estate and people (idempotent)."

    def handle(self, *args, **options):
        logins = seed_demo()
        self.stdout.write(self.style.SUCCESS("Demo data ready."))
        for key, value in logins.items():
            self.stdout.write(f"  {key}: {value}")
