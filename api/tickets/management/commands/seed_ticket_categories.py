"""`palier seed_ticket_categories`: refresh the standard tree of request categories."""

from django.core.management.base import BaseCommand

from api.tickets.category_tree import seed_standard_categories
from api.tickets.models import Category, CategoryQuestion


class Command(BaseCommand):
    help = "Create or update Palier's standard request categories (idempotent)."

    def handle(self, *args, **options):
        count = seed_standard_categories(Category, CategoryQuestion)
        self.stdout.write(self.style.SUCCESS(f"{count} standard categories up to date."))
