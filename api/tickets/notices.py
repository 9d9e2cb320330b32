"""What requests and incidents tell people, through the notification outbox.

Every message is written by `api.notifications.services.notify` in the caller's transaction
(the outbox); the notification templates word it in each recipient's language from the plain
JSON context given here.
"""

from collections.abc import Iterable

from django.conf import settings


def deep_link(path: str) -> str:
    """A link that opens the right screen of the app."""
    return f"{settings.APP_DEEP_LINK_BASE}{path}"


def _people(recipients: Iterable) -> list:
    seen, people = set(), []
    for person in recipients:
        if person is None or not person.is_active or person.pk in seen:
            continue
        seen.add(person.pk)
        people.append(person)
    return people


def tell(
    *,
    recipients: Iterable,
    event: str,
    context: dict,
    critical: bool = False,
    link: str = "",
    dedupe_key: str | None = None,
    actor=None,
    exclude=None,
) -> int:
    """Queue `event` for each distinct active recipient (but `exclude`); return how many."""
    people = [p for p in _people(recipients) if exclude is None or p.pk != exclude.pk]
    if not people:
        return 0
    from api.notifications.services import notify

    notify(
        recipients=people,
        event=event,
        context=context,
        critical=critical,
        deep_link=deep_link(link) if link else "",
        dedupe_key=dedupe_key,
        actor=actor,
    )
    return len(people)
