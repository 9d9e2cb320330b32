from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "api.accounts"
    label = "accounts"
    verbose_name = "People"
