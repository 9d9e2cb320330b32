"""Plain-language words for the tenant's timeline, in French, easy-to-read French, English, Arabic.

Short sentences, common words, one idea each (FALC style in `fr-falc`). A language without a
text falls back to French.
"""

from .models import EventKind, Status, WaitingReason

LANGUAGES = ("fr", "fr-falc", "en", "ar")

STATUS_LABELS = {
    Status.NEW: {"fr": "Reçue", "fr-falc": "Reçue", "en": "Received", "ar": "مستلم"},
    Status.ACKNOWLEDGED: {
        "fr": "Prise en compte",
        "fr-falc": "Vue par l'équipe",
        "en": "Seen by the team",
        "ar": "قيد الاعتبار",
    },
    Status.SCHEDULED: {
        "fr": "Intervention prévue",
        "fr-falc": "Visite prévue",
        "en": "Visit planned",
        "ar": "تدخل مبرمج",
    },
    Status.IN_PROGRESS: {
        "fr": "En cours",
        "fr-falc": "Travail en cours",
        "en": "In progress",
        "ar": "قيد الإنجاز",
    },
    Status.WAITING: {
        "fr": "En attente",
        "fr-falc": "En attente",
        "en": "On hold",
        "ar": "في الانتظار",
    },
    Status.RESOLVED: {
        "fr": "Réglée, à confirmer",
        "fr-falc": "Réparé ? Dites-le nous",
        "en": "Fixed, please confirm",
        "ar": "تم الإصلاح، يرجى التأكيد",
    },
    Status.CLOSED: {"fr": "Terminée", "fr-falc": "Terminée", "en": "Closed", "ar": "مغلق"},
    Status.REJECTED: {
        "fr": "Non retenue",
        "fr-falc": "Refusée",
        "en": "Not accepted",
        "ar": "مرفوض",
    },
    Status.DUPLICATE: {
        "fr": "Déjà signalée",
        "fr-falc": "Déjà signalée",
        "en": "Already reported",
        "ar": "تم الإبلاغ عنه سابقاً",
    },
    Status.REOPENED: {
        "fr": "Rouverte",
        "fr-falc": "Ouverte à nouveau",
        "en": "Reopened",
        "ar": "أعيد فتحه",
    },
}

WAITING_REASONS = {
    WaitingReason.NO_ACCESS: {
        "fr": "Nous n'avons pas pu entrer dans le logement.",
        "fr-falc": "Nous n'avons pas pu entrer chez vous.",
        "en": "We could not get into the dwelling.",
        "ar": "لم نتمكن من دخول المسكن.",
    },
    WaitingReason.PARTS_ON_ORDER: {
        "fr": "Une pièce a été commandée.",
        "fr-falc": "Nous attendons une pièce.",
        "en": "A part has been ordered.",
        "ar": "تم طلب قطعة غيار.",
    },
    WaitingReason.TENANT_TO_ACT: {
        "fr": "Nous attendons une action de votre part.",
        "fr-falc": "Vous devez faire quelque chose. Lisez le message.",
        "en": "We need something from you.",
        "ar": "ننتظر إجراءً من جانبك.",
    },
}

_STATUS_TEXTS = {
    Status.ACKNOWLEDGED: {
        "fr": "Votre demande a été prise en compte.",
        "fr-falc": "L'équipe a vu votre demande.",
        "en": "The team has seen your request.",
        "ar": "تم أخذ طلبك بعين الاعتبار.",
    },
    Status.SCHEDULED: {
        "fr": "Une intervention est prévue.",
        "fr-falc": "Une visite est prévue.",
        "en": "A visit is planned.",
        "ar": "تمت برمجة تدخل.",
    },
    Status.IN_PROGRESS: {
        "fr": "L'intervention a commencé.",
        "fr-falc": "Le travail a commencé.",
        "en": "Work has started.",
        "ar": "بدأ التدخل.",
    },
    Status.WAITING: {
        "fr": "Votre demande est en attente.",
        "fr-falc": "Votre demande attend.",
        "en": "Your request is on hold.",
        "ar": "طلبك في الانتظار.",
    },
    Status.RESOLVED: {
        "fr": "Le problème est réglé. Pouvez-vous confirmer ?",
        "fr-falc": "Nous avons réparé. Est-ce que tout marche ?",
        "en": "The problem is fixed. Can you confirm?",
        "ar": "تم حل المشكلة. هل يمكنك التأكيد؟",
    },
    Status.CLOSED: {
        "fr": "Votre demande est terminée.",
        "fr-falc": "Votre demande est finie.",
        "en": "Your request is closed.",
        "ar": "تم إغلاق طلبك.",
    },
    Status.REJECTED: {
        "fr": "Votre demande n'a pas été retenue.",
        "fr-falc": "Nous ne pouvons pas faire cette demande.",
        "en": "Your request was not accepted.",
        "ar": "لم يتم قبول طلبك.",
    },
    Status.DUPLICATE: {
        "fr": "Ce problème était déjà signalé : nous suivons la même demande.",
        "fr-falc": "Quelqu'un a déjà signalé ce problème. Nous le réparons.",
        "en": "This problem was already reported; we follow that request.",
        "ar": "تم الإبلاغ عن هذه المشكلة سابقاً، ونتابع نفس الطلب.",
    },
    Status.REOPENED: {
        "fr": "La demande a été rouverte.",
        "fr-falc": "La demande est ouverte à nouveau.",
        "en": "The request was reopened.",
        "ar": "أعيد فتح الطلب.",
    },
}

_CAUSE_TEXTS = {
    "confirmed_fixed": {
        "fr": "Vous avez confirmé que c'est réparé. Merci !",
        "fr-falc": "Vous avez dit : c'est réparé. Merci !",
        "en": "You confirmed it is fixed. Thank you!",
        "ar": "لقد أكدت أن المشكلة أصلحت. شكراً!",
    },
    "still_broken": {
        "fr": "Vous avez signalé que le problème continue. Nous reprenons la demande.",
        "fr-falc": "Vous avez dit : ça ne marche pas. Nous revenons.",
        "en": "You said the problem is still there. We are taking it up again.",
        "ar": "أبلغت أن المشكلة مستمرة. سنعيد معالجة الطلب.",
    },
    "no_answer": {
        "fr": "Sans réponse de votre part sous 7 jours, la demande est terminée.",
        "fr-falc": "Vous n'avez pas répondu pendant 7 jours. La demande est finie.",
        "en": "With no answer from you within 7 days, the request is closed.",
        "ar": "لعدم الرد خلال 7 أيام، تم إغلاق الطلب.",
    },
    "incident": {
        "fr": "Le problème qui touchait tout le bâtiment est réglé.",
        "fr-falc": "Le problème de tout l'immeuble est réparé.",
        "en": "The problem affecting the whole building is fixed.",
        "ar": "تم حل المشكلة التي كانت تمس المبنى بأكمله.",
    },
}

_EVENT_TEXTS = {
    EventKind.CREATED: {
        "fr": "Demande enregistrée.",
        "fr-falc": "Nous avons reçu la demande.",
        "en": "Request received.",
        "ar": "تم تسجيل الطلب.",
    },
    EventKind.PHOTO: {
        "fr": "Photo ajoutée.",
        "fr-falc": "Une photo est ajoutée.",
        "en": "Photo added.",
        "ar": "تمت إضافة صورة.",
    },
    EventKind.INCIDENT: {
        "fr": "Ce problème touche tout le bâtiment. Nous nous en occupons.",
        "fr-falc": "Ce problème touche tout l'immeuble. Nous le réparons.",
        "en": "This problem affects the whole building. We are on it.",
        "ar": "هذه المشكلة تمس المبنى بأكمله. نحن نعمل على حلها.",
    },
    EventKind.CONFIRMED: {
        "fr": "Réponse reçue.",
        "fr-falc": "Nous avons reçu votre réponse.",
        "en": "Answer received.",
        "ar": "تم استلام الرد.",
    },
}

_APPOINTMENT_TEXTS = {
    "proposed": {
        "fr": "Des créneaux de visite vous sont proposés. Choisissez-en un.",
        "fr-falc": "Choisissez un jour et une heure pour la visite.",
        "en": "Visit slots are offered to you. Please pick one.",
        "ar": "نقترح عليك مواعيد للزيارة. اختر واحداً منها.",
    },
    "booked": {
        "fr": "Visite prévue.",
        "fr-falc": "La visite est prévue.",
        "en": "Visit booked.",
        "ar": "تم تحديد موعد الزيارة.",
    },
    "cancelled": {
        "fr": "Visite annulée.",
        "fr-falc": "La visite est annulée.",
        "en": "Visit cancelled.",
        "ar": "تم إلغاء الزيارة.",
    },
    "done": {
        "fr": "Visite effectuée.",
        "fr-falc": "Le technicien est venu.",
        "en": "Visit done.",
        "ar": "تمت الزيارة.",
    },
    "missed": {
        "fr": "Visite manquée : personne n'a pu nous ouvrir.",
        "fr-falc": "Le technicien est venu. Personne n'a ouvert.",
        "en": "Missed visit: nobody could let us in.",
        "ar": "زيارة فائتة: لم يتمكن أحد من فتح الباب.",
    },
}

_WHO = {
    "you": {"fr": "Vous", "fr-falc": "Vous", "en": "You", "ar": "أنت"},
    "household": {
        "fr": "Votre foyer",
        "fr-falc": "Votre famille",
        "en": "Your household",
        "ar": "أسرتك",
    },
    "tenant": {"fr": "Un résident", "fr-falc": "Un voisin", "en": "A resident", "ar": "أحد السكان"},
    "caretaker": {
        "fr": "Le gardien",
        "fr-falc": "Le gardien",
        "en": "The caretaker",
        "ar": "الحارس",
    },
    "technician": {
        "fr": "Le technicien",
        "fr-falc": "Le technicien",
        "en": "The technician",
        "ar": "التقني",
    },
    "contractor": {
        "fr": "L'entreprise",
        "fr-falc": "L'entreprise",
        "en": "The contractor",
        "ar": "المقاول",
    },
    "agency": {
        "fr": "Votre agence",
        "fr-falc": "Votre agence",
        "en": "Your agency",
        "ar": "وكالتك",
    },
    "system": {"fr": "Palier", "fr-falc": "Palier", "en": "Palier", "ar": "Palier"},
}

_ROLE_WHO = {
    "tenant": "tenant",
    "caretaker": "caretaker",
    "technician": "technician",
    "contractor": "contractor",
    "agency_staff": "agency",
    "manager": "agency",
    "admin": "agency",
    "system": "system",
}


def language_of(user) -> str:
    """The person's language among those the timeline speaks (French otherwise)."""
    language = (getattr(user, "language", "") or "fr").lower()
    if language in LANGUAGES:
        return language
    base = language.split("-")[0]
    return base if base in LANGUAGES else "fr"


def pick(texts: dict, language: str) -> str:
    """The text in `language`, else its base language, else French."""
    return texts.get(language) or texts.get(language.split("-")[0]) or texts["fr"]


def status_label(status: str, language: str) -> str:
    return pick(STATUS_LABELS.get(status, {"fr": status}), language)


def waiting_reason_text(reason: str, language: str) -> str:
    return pick(WAITING_REASONS[reason], language) if reason in WAITING_REASONS else ""


def who(event, *, viewer, household_ids: set, language: str) -> str:
    """Who did it, as the viewer should read it: never another tenant's name."""
    people = {event.actor_id, event.on_behalf_of_id} - {None}
    if viewer.pk in people:
        key = "you"
    elif event.actor_role == "tenant" and people & household_ids:
        key = "household"
    else:
        key = _ROLE_WHO.get(event.actor_role, "system")
    return pick(_WHO[key], language)


def event_text(event, language: str) -> str | None:
    """The plain sentence for one public event, or None when the tenant needs none."""
    if event.kind == EventKind.STATUS:
        cause = (event.data or {}).get("cause")
        if cause in _CAUSE_TEXTS:
            return pick(_CAUSE_TEXTS[cause], language)
        text = pick(_STATUS_TEXTS.get(event.to_status, {"fr": ""}), language)
        reason = (event.data or {}).get("waiting_reason")
        if event.to_status == Status.WAITING and reason:
            text = f"{text} {waiting_reason_text(reason, language)}"
        return text
    if event.kind == EventKind.APPOINTMENT:
        action = (event.data or {}).get("action")
        return pick(_APPOINTMENT_TEXTS[action], language) if action in _APPOINTMENT_TEXTS else None
    if event.kind == EventKind.COMMENT:
        return event.note
    if event.kind in _EVENT_TEXTS:
        return pick(_EVENT_TEXTS[event.kind], language)
    return None
