"""Factories for residence news."""

import factory
from django.utils import timezone
from factory.django import DjangoModelFactory

from api.news.models import Post
from tests.factories.accounts import UserFactory


class PostFactory(DjangoModelFactory):
    class Meta:
        model = Post

    building = factory.SubFactory("tests.factories.estate.BuildingFactory")
    residence = None
    entrance = None
    organisation = factory.LazyAttribute(
        lambda o: (o.building or o.entrance or o.residence).organisation
    )
    kind = "news"
    title = factory.Sequence(lambda n: f"Nouvelle {n}")
    body = "Les espaces verts seront entretenus mardi."
    publish_at = factory.LazyFunction(timezone.now)
    notified_at = factory.LazyFunction(timezone.now)
    author = factory.SubFactory(
        UserFactory, role="caretaker", organisation=factory.SelfAttribute("..organisation")
    )
