"""The words of every notification, per event, in each person's language.

Each event has a title, a body (inbox, push, e-mail) and an SMS text. The source texts are
English msgids; French, easy-to-read French ("fr-falc": short sentences, common words, one
idea a sentence) and Arabic come from the gettext catalogs in api/locale, so a language is
added by adding a catalog. SMS texts are written to fit one segment with ordinary values.

Values in `context` are plain JSON. Keys ending in `_at` (or named `at`) holding an ISO 8601
instant are written as a local date and time in the person's language. An event whose needed
keys are missing falls back to the generic text, which uses `title` and `message` if given.
"""

from dataclasses import dataclass, field
from datetime import datetime

from django.conf import settings
from django.utils import timezone, translation
from django.utils.dateformat import format as date_format
from django.utils.translation import gettext, pgettext
from django.utils.translation import gettext_noop as N_

from .gsm import fold_to_gsm7

RTL_LANGUAGES = frozenset({"ar", "he", "fa", "ur"})


@dataclass(frozen=True)
class Extra:
    """A sentence added when `key` has a value (in the body, and in the SMS if given)."""

    key: str
    body: str
    sms: str = ""


@dataclass(frozen=True)
class EventText:
    """The words of one event; `link` is the app screen opened, with `{key}` from the context."""

    title: str
    body: str
    sms: str
    needs: tuple[str, ...] = ()
    extras: tuple[Extra, ...] = ()
    link: str = ""
    with_message: bool = False


@dataclass(frozen=True)
class Rendered:
    """A notification's words in one language."""

    language: str
    title: str
    body: str
    sms: str
    rtl: bool = False
    extras: dict = field(default_factory=dict)


GENERIC = EventText(
    title=N_("New message"),
    body=N_("You have a new message. Open the Palier app to read it."),
    sms=N_("Palier: you have a new message. Open the Palier app to read it."),
)
GENERIC_WITH_TITLE = EventText(
    title="%(title)s",
    body=N_("You have a new message: %(title)s."),
    sms=N_("Palier: %(title)s"),
    needs=("title",),
    with_message=True,
)

_STARTS = Extra("starts_at", N_("It starts on %(starts_at)s."), N_(" From %(starts_at)s."))
_ENDS = Extra("ends_at", N_("It should end on %(ends_at)s."), N_(" Until %(ends_at)s."))
_EXPECTED_END = Extra(
    "expected_end",
    N_("It should work again on %(expected_end)s."),
    N_(" Back on %(expected_end)s."),
)
_ACK = Extra("ack_url", N_("Acknowledge: %(ack_url)s"), " %(ack_url)s")


def _cut(title: str, body: str, sms: str) -> EventText:
    return EventText(
        title=title,
        body=body,
        sms=sms,
        needs=("place",),
        extras=(_STARTS, _ENDS),
        with_message=True,
    )


EVENTS: dict[str, EventText] = {
    "ticket.created": EventText(
        title=N_("Request %(reference)s recorded"),
        body=N_("Request %(reference)s is recorded: %(category)s. You will be told of each step."),
        sms=N_(
            "Palier: request %(reference)s is recorded (%(category)s). We will keep you informed."
        ),
        needs=("reference", "category"),
        link="tickets/{ticket_id}",
    ),
    "ticket.status_changed": EventText(
        title=N_("Request %(reference)s: %(status)s"),
        body=N_("Request %(reference)s has a new status: %(status)s."),
        sms=N_("Palier: request %(reference)s - %(status)s."),
        needs=("reference", "status"),
        extras=(
            Extra(
                "waiting_reason", N_("Why: %(waiting_reason)s."), N_(" Why: %(waiting_reason)s.")
            ),
            Extra("note", "%(note)s"),
        ),
        link="tickets/{ticket_id}",
    ),
    "ticket.resolved_confirm_request": EventText(
        title=N_("Is it fixed?"),
        body=N_(
            "Request %(reference)s is marked as done. Is the problem fixed? Answer in the app."
        ),
        sms=N_(
            "Palier: request %(reference)s is marked as done. Reply 1 if it is fixed, "
            "2 if it is still broken."
        ),
        needs=("reference",),
        link="tickets/{ticket_id}/confirm",
    ),
    "ticket.comment": EventText(
        title=N_("New message about request %(reference)s"),
        body=N_("There is a new message about request %(reference)s. Open the app to read it."),
        sms=N_("Palier: new message about request %(reference)s. Open the app to read it."),
        needs=("reference",),
        extras=(Extra("text", "%(text)s"),),
        link="tickets/{ticket_id}",
    ),
    "ticket.received": EventText(
        title=N_("Request %(reference)s received"),
        body=N_(
            "We have received your request %(reference)s: %(category)s. "
            "We will tell you what happens next."
        ),
        sms=N_("Palier: we have received your request %(reference)s (%(category)s)."),
        needs=("reference", "category"),
        link="tickets/{ticket_id}",
    ),
    "ticket.assigned": EventText(
        title=N_("New request for you: %(reference)s"),
        body=N_("Request %(reference)s (%(category)s) at %(place)s is for you."),
        sms=N_("Palier: request %(reference)s (%(category)s) at %(place)s is for you."),
        needs=("reference", "category", "place"),
        link="tickets/{ticket_id}",
    ),
    "ticket.sla_breached": EventText(
        title=N_("Overdue: request %(reference)s"),
        body=N_("Request %(reference)s (%(category)s) at %(place)s is overdue: %(target)s."),
        sms=N_("Palier: request %(reference)s at %(place)s is overdue (%(target)s)."),
        needs=("reference", "category", "place", "target"),
        link="tickets/{ticket_id}",
    ),
    "appointment.proposed": EventText(
        title=N_("Choose your appointment"),
        body=N_(
            "For request %(reference)s, a technician offers appointment times. "
            "Choose one in the app."
        ),
        sms=N_(
            "Palier: choose an appointment for request %(reference)s in the app, "
            "or call your agency."
        ),
        needs=("reference",),
        link="tickets/{ticket_id}/appointments",
    ),
    "appointment.booked": EventText(
        title=N_("Appointment on %(starts_at)s"),
        body=N_(
            "A technician will come on %(starts_at)s for request %(reference)s. Please be at home."
        ),
        sms=N_(
            "Palier: a technician will come on %(starts_at)s for request %(reference)s. "
            "Please be at home."
        ),
        needs=("reference", "starts_at"),
        link="tickets/{ticket_id}/appointments",
    ),
    "appointment.reminder": EventText(
        title=N_("Reminder: appointment on %(starts_at)s"),
        body=N_(
            "Reminder: a technician will come on %(starts_at)s for request %(reference)s. "
            "Please be at home."
        ),
        sms=N_(
            "Palier reminder: a technician will come on %(starts_at)s "
            "(request %(reference)s). Please be at home."
        ),
        needs=("reference", "starts_at"),
        link="tickets/{ticket_id}/appointments",
    ),
    "appointment.cancelled": EventText(
        title=N_("Appointment cancelled"),
        body=N_("The appointment of %(starts_at)s for request %(reference)s is cancelled."),
        sms=N_("Palier: the appointment of %(starts_at)s (request %(reference)s) is cancelled."),
        needs=("reference", "starts_at"),
        extras=(Extra("reason", "%(reason)s"),),
        link="tickets/{ticket_id}/appointments",
    ),
    "incident.started": EventText(
        title=N_("Problem: %(summary)s"),
        body=N_("There is a problem at %(place)s: %(summary)s. We are working on it."),
        sms=N_("Palier: problem at %(place)s: %(summary)s. We are working on it."),
        needs=("summary", "place"),
        extras=(_EXPECTED_END,),
        link="incidents/{incident_id}",
        with_message=True,
    ),
    "incident.updated": EventText(
        title=N_("Update: %(summary)s"),
        body=N_("New information about the problem at %(place)s: %(summary)s."),
        sms=N_("Palier: news about the problem at %(place)s: %(summary)s."),
        needs=("summary", "place"),
        extras=(_EXPECTED_END,),
        link="incidents/{incident_id}",
        with_message=True,
    ),
    "incident.ended": EventText(
        title=N_("Fixed: %(summary)s"),
        body=N_("The problem at %(place)s is over: %(summary)s. Thank you for your patience."),
        sms=N_("Palier: the problem at %(place)s is over (%(summary)s). Thank you."),
        needs=("summary", "place"),
        link="incidents/{incident_id}",
    ),
    "fault.alert": EventText(
        title=N_("Fault: %(rule)s"),
        body=N_("%(rule)s at %(place)s. Severity: %(severity)s."),
        sms=N_("Palier fault: %(rule)s at %(place)s (%(severity)s)."),
        needs=("rule", "place", "severity"),
        extras=(_ACK,),
        link="alerts/{alert_id}",
    ),
    "fault.detected": EventText(
        title=N_("We detected a problem: %(category)s"),
        body=N_(
            "Our sensors detected a problem in your home: %(category)s. We opened request "
            "%(reference)s and a technician will contact you. You have nothing to do."
        ),
        sms=N_(
            "Palier: we detected a problem in your home (%(category)s). Request %(reference)s "
            "is open, a technician will call you."
        ),
        needs=("reference", "category"),
        link="tickets/{ticket_id}",
    ),
    "alert.digest": EventText(
        title=N_("%(count)s more alerts"),
        body=N_("%(count)s more alerts for %(team)s came in. Open the app to see them."),
        sms=N_("Palier: %(count)s more alerts for %(team)s. Open the app to see them."),
        needs=("count", "team"),
        extras=(_ACK,),
        link="alerts",
    ),
    "audit.corrective_action": EventText(
        title=N_("Action needed: %(place)s"),
        body=N_("A check found a problem at %(place)s: %(action)s."),
        sms=N_("Palier: action needed at %(place)s: %(action)s."),
        needs=("place", "action"),
        extras=(Extra("due_at", N_("To do by %(due_at)s."), N_(" By %(due_at)s.")),),
        link="audits/actions/{action_id}",
    ),
    "cleanliness.survey": EventText(
        title=N_("Is your staircase clean?"),
        body=N_("How clean is your staircase this week?"),
        sms=N_("Palier: is your staircase clean?"),
        # The no-login link to the four faces; the SMS holds it bare to stay in one segment.
        extras=(Extra("url", N_("Answer in one tap: %(url)s"), " %(url)s"),),
        link="cleanliness-surveys",
    ),
    "household.not_reached": EventText(
        title=N_("Households to visit"),
        body=N_(
            "%(count)s households did not read the notice: %(title)s. Please knock on their doors."
        ),
        sms=N_('Palier: %(count)s households did not read "%(title)s". Please visit them.'),
        needs=("count", "title"),
        link="door-knocking",
    ),
    "news.published": EventText(
        title=N_("News: %(title)s"),
        body=N_("There is a new post for %(place)s: %(title)s."),
        sms=N_("Palier: new post for %(place)s: %(title)s. Read it in the app."),
        needs=("title", "place"),
        link="news/{post_id}",
    ),
    "news.emergency": EventText(
        title=N_("Urgent: %(title)s"),
        body=N_("Urgent message for %(place)s: %(title)s."),
        sms=N_("Palier URGENT, %(place)s: %(title)s."),
        needs=("title", "place"),
        link="news/{post_id}",
        with_message=True,
    ),
    "news.access_request": EventText(
        title=N_("We need to enter your home"),
        body=N_(
            "We need to enter your home: %(title)s. Please tell us in the app that you have "
            "seen this."
        ),
        sms=N_("Palier: we need to enter your home (%(title)s). Please confirm in the app."),
        needs=("title",),
        extras=(_STARTS,),
        link="news/{post_id}",
    ),
    "broadcast.water_cut": _cut(
        N_("Water cut"),
        N_("The water will be cut at %(place)s."),
        N_("Palier: water cut at %(place)s."),
    ),
    "broadcast.hot_water_cut": _cut(
        N_("Hot water cut"),
        N_("There will be no hot water at %(place)s."),
        N_("Palier: no hot water at %(place)s."),
    ),
    "broadcast.power_cut": _cut(
        N_("Power cut"),
        N_("The electricity will be cut at %(place)s."),
        N_("Palier: power cut at %(place)s."),
    ),
    "broadcast.heating_cut": _cut(
        N_("Heating cut"),
        N_("The heating will be off at %(place)s."),
        N_("Palier: heating off at %(place)s."),
    ),
    "broadcast.gas_cut": _cut(
        N_("Gas cut"),
        N_("The gas will be cut at %(place)s. Do not use gas appliances."),
        N_("Palier: gas cut at %(place)s. Do not use gas."),
    ),
    "broadcast.lift_outage": _cut(
        N_("Lift out of order"),
        N_("The lift does not work at %(place)s."),
        N_("Palier: lift out of order at %(place)s."),
    ),
    "broadcast.works": _cut(
        N_("Works"),
        N_("There will be works at %(place)s."),
        N_("Palier: works at %(place)s."),
    ),
    "broadcast.emergency": _cut(
        N_("Urgent message"),
        N_("Urgent message for %(place)s."),
        N_("Palier URGENT, %(place)s:"),
    ),
    "broadcast.information": _cut(
        N_("Information"),
        N_("Information for %(place)s."),
        N_("Palier, %(place)s:"),
    ),
    "rent.receipt_available": EventText(
        title=N_("Rent receipt for %(period)s"),
        body=N_("Your rent receipt for %(period)s is ready. You can download it in the app."),
        sms=N_("Palier: your rent receipt for %(period)s is ready in the app."),
        needs=("period",),
        link="rent-receipts/{receipt_id}",
    ),
}


# Codes that callers pass as they are stored, and the words shown for them.
LABELS: dict[str, dict[str, tuple[str, str]]] = {
    "status": {
        "new": ("ticket status", N_("received")),
        "acknowledged": ("ticket status", N_("taken in hand")),
        "scheduled": ("ticket status", N_("scheduled")),
        "in_progress": ("ticket status", N_("in progress")),
        "waiting": ("ticket status", N_("on hold")),
        "resolved": ("ticket status", N_("done")),
        "closed": ("ticket status", N_("closed")),
        "rejected": ("ticket status", N_("refused")),
        "duplicate": ("ticket status", N_("already reported")),
        "reopened": ("ticket status", N_("reopened")),
    },
    "waiting_reason": {
        "no_access": ("waiting reason", N_("we could not get into your home")),
        "parts_on_order": ("waiting reason", N_("a part is on order")),
        "tenant_to_act": ("waiting reason", N_("we are waiting for you")),
    },
    "target": {
        "acknowledge": ("service level", N_("not taken in hand in time")),
        "resolve": ("service level", N_("not done in time")),
    },
    "severity": {
        "minor": ("severity", N_("minor")),
        "major": ("severity", N_("major")),
        "critical": ("severity", N_("critical")),
    },
}


def _derived(context: dict) -> dict:
    """Values templates use, made from what callers give (a place from a residence and
    building, a summary from a category)."""
    values = dict(context)
    if not _present(values.get("place")) and _present(values.get("residence")):
        building = values.get("building")
        values["place"] = (
            f"{values['residence']}, bât. {building}" if _present(building) else values["residence"]
        )
    if not _present(values.get("summary")) and _present(values.get("category")):
        values["summary"] = values["category"]
    return values


class _Values(dict):
    """Context values for %-formatting; a key nobody gave renders empty rather than failing."""

    def __missing__(self, key):
        return ""


def _present(value) -> bool:
    return value is not None and value != "" and value != [] and value != {}


def format_instant(value: datetime) -> str:
    """A local date and time in the active language ("mardi 14 mai à 8h00")."""
    local = timezone.localtime(value) if timezone.is_aware(value) else value
    # Translators: a date format (Django date syntax), e.g. French "l j F à G\hi".
    return date_format(local, pgettext("notification datetime", "l j F, G:i"))


def _display(key: str, value):
    labels = LABELS.get(key)
    if labels and isinstance(value, str) and value in labels:
        return pgettext(*labels[value])
    if isinstance(value, str) and (key.endswith("_at") or key in {"at", "expected_end"}):
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError:
            return value
        if parsed.tzinfo is None:
            parsed = timezone.make_aware(parsed)
        return format_instant(parsed)
    if isinstance(value, bool):
        return gettext("yes") if value else gettext("no")
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return value


def _values(context: dict) -> _Values:
    return _Values(
        {
            key: _display(key, value)
            for key, value in context.items()
            if isinstance(key, str) and _present(value)
        }
    )


def event_text(event: str, context: dict) -> EventText:
    """The event's words, or the generic ones when the event or a needed value is missing."""
    text = EVENTS.get(event)
    context = _derived(context)
    if text is not None and all(_present(context.get(key)) for key in text.needs):
        return text
    if _present(context.get("title")):
        return GENERIC_WITH_TITLE
    return GENERIC


def _message(context: dict, language: str) -> str:
    """Staff's own words: their translation for the language if given, else the original."""
    translations = context.get("translations")
    if isinstance(translations, dict):
        for code in (language, language.split("-")[0]):
            if isinstance(translations.get(code), str) and translations[code].strip():
                return translations[code].strip()
    message = context.get("message")
    return message.strip() if isinstance(message, str) else ""


def _t(msgid: str) -> str:
    return gettext(msgid) if msgid else ""


def base_language(language: str | None) -> str:
    """A language Palier has words for (the default one otherwise)."""
    known = {code for code, _ in settings.LANGUAGES}
    return language if language in known else settings.LANGUAGE_CODE


def render(event: str, context: dict, language: str | None) -> Rendered:
    """The title, body and SMS text of an event in `language`."""
    language = base_language(language)
    text = event_text(event, context)
    with translation.override(language):
        values = _values(_derived(context))
        title = _t(text.title) % values
        body_parts = [_t(text.body) % values]
        sms = _t(text.sms) % values
        for extra in text.extras:
            if extra.key in values:
                body_parts.append(_t(extra.body) % values)
                if extra.sms:
                    sms += _t(extra.sms) % values
        if text.with_message:
            message = _message(context, language)
            if message and message != title:
                body_parts.append(message)
                sms = f"{sms} {message}"
    body = " ".join(part.strip() for part in body_parts if part.strip())
    sms = " ".join(sms.split())
    if language.split("-")[0] not in RTL_LANGUAGES:
        sms = fold_to_gsm7(sms)
    return Rendered(
        language=language,
        title=" ".join(title.split())[:200],
        body=body,
        sms=sms,
        rtl=language.split("-")[0] in RTL_LANGUAGES,
    )


def deep_link_path(event: str, context: dict) -> str:
    """The app screen an event opens, from its link pattern and the context's ids."""
    text = EVENTS.get(event)
    if text is None or not text.link:
        return ""
    try:
        return text.link.format_map({k: v for k, v in context.items() if _present(v)})
    except (KeyError, ValueError, IndexError):
        return text.link.split("/{", 1)[0]


def full_deep_link(path: str) -> str:
    """An app URL: a path is put under settings.APP_DEEP_LINK_BASE; a full URL is kept."""
    if not path or "://" in path:
        return path
    base = settings.APP_DEEP_LINK_BASE
    return base + path.lstrip("/") if base.endswith(("/", ":")) else f"{base}/{path.lstrip('/')}"
