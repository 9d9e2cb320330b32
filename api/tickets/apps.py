from django.apps import AppConfig


class TicketsConfig(AppConfig):
    name = "api.tickets"
    label = "tickets"
    verbose_name = "Requests and incidents"
