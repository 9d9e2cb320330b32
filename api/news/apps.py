from django.apps import AppConfig


class NewsConfig(AppConfig):
    name = "api.news"
    label = "news"
    verbose_name = "Residence news"
