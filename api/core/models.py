"""Abstract models every app builds on."""

import uuid

from django.db import models


class BaseModel(models.Model):
    """A row with a UUID key (so clients may create it offline) and creation/update times."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        abstract = True
