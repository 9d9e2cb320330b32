from django.apps import AppConfig


class EstateConfig(AppConfig):
    name = "api.estate"
    label = "estate"
    verbose_name = "Estate"
