"""The estate register."""

from django.db import models

from api.core.models import BaseModel


class Organisation(BaseModel):
    """A social landlord; organisations never see each other's data."""

    name = models.CharField(max_length=200)
    slug = models.SlugField(max_length=50, unique=True, help_text="Also the MQTT fleet name.")

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name
