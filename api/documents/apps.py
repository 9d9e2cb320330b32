from django.apps import AppConfig


class DocumentsConfig(AppConfig):
    name = "api.documents"
    label = "documents"
    verbose_name = "Rent receipts"
