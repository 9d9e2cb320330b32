"""Warn staff before they save a note that seems to hold sensitive data about a person.

Staff notes are where a landlord most easily records what the law forbids or restricts
(GDPR art. 9 and 10, CNIL guidance on free-text fields): health, religion, origin, sexual
orientation, political or union opinions, offences, and judgments about a person. A French
word list (api/core/data/sensitive_words_fr.txt) is matched on whole words, ignoring case and
accents. It is a warning, not a censor: staff may confirm with `"acknowledge_sensitive": true`
in the request body (docs/privacy-notes.md).
"""

import re
import unicodedata
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from django.utils.translation import gettext_lazy as _

from api.core.exceptions import ServiceError

WORD_LIST = Path(__file__).parent / "data" / "sensitive_words_fr.txt"
ACKNOWLEDGE_FIELD = "acknowledge_sensitive"

CATEGORY_LABELS = {
    "health": _("health"),
    "religion": _("religion"),
    "origin": _("origin or ethnicity"),
    "judgment": _("a judgment about a person"),
    "offence": _("offences or convictions"),
    "sexual_orientation": _("sex life or sexual orientation"),
    "political": _("political or union opinions"),
}
# The fields staff write in free text about a request, a home or a person, wherever a request
# carries them. Messages to every household of a building (incidents' `public_message`,
# broadcasts, news) are not among them: they speak about no one, and public advice ("pensez
# aux personnes âgées") would raise false alarms.
STAFF_TEXT_FIELDS = ("text", "note", "notes", "description", "comment", "reason", "visit_note")
_LIGATURES = {"œ": "oe", "Œ": "oe", "æ": "ae", "Æ": "ae", "ß": "ss"}


@dataclass(frozen=True)
class Finding:
    """One passage of a text that seems to hold sensitive data, and its category."""

    category: str
    excerpt: str


def _fold(char: str) -> str:
    """A character without case or accent; anything but a letter or digit becomes a space."""
    if char in _LIGATURES:
        return _LIGATURES[char]
    base = unicodedata.normalize("NFKD", char)
    base = "".join(c for c in base if not unicodedata.combining(c)).lower()
    return "".join(c if c.isascii() and c.isalnum() else " " for c in base) or " "


def normalise(text: str) -> tuple[str, list[int]]:
    """The folded text, single-spaced, with the index in `text` of each of its characters."""
    out: list[str] = []
    where: list[int] = []
    for index, char in enumerate(text):
        for folded in _fold(char):
            if folded == " " and (not out or out[-1] == " "):
                continue
            out.append(folded)
            where.append(index)
    return "".join(out), where


def _pattern(line: str) -> str:
    """Regex source of one list entry: words separated by a space, `*` ends or is a word."""
    words = []
    for word in line.split():
        if word == "*":
            words.append("[a-z0-9]+")
            continue
        stem = re.escape(normalise(word.rstrip("*"))[0].strip())
        words.append(stem.replace(r"\ ", " ") + ("[a-z0-9]*" if word.endswith("*") else ""))
    return " ".join(words)


def _compile(patterns: list[str]) -> re.Pattern:
    """One regex for many entries, longest first, on whole words only."""
    body = "|".join(sorted(patterns, key=len, reverse=True))
    return re.compile(rf"(?<![a-z0-9])(?:{body})(?![a-z0-9])")


@lru_cache(maxsize=1)
def word_list() -> tuple[re.Pattern | None, dict[str, re.Pattern]]:
    """The compiled list: one pattern of phrases to ignore, one pattern per category."""
    sections: dict[str, list[str]] = {}
    current = None
    for raw in WORD_LIST.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("[") and line.endswith("]"):
            current = line[1:-1]
            sections.setdefault(current, [])
            continue
        if current is None:
            raise ValueError(f"{WORD_LIST.name}: entry before any [category]: {line!r}")
        sections[current].append(_pattern(line))
    ignore = sections.pop("ignore", [])
    unknown = set(sections) - set(CATEGORY_LABELS)
    if unknown:
        raise ValueError(f"{WORD_LIST.name}: unknown categories {sorted(unknown)}")
    compiled = {category: _compile(patterns) for category, patterns in sections.items() if patterns}
    return (_compile(ignore) if ignore else None), compiled


def sensitive_text_findings(text: str) -> list[Finding]:
    """Passages of `text` that seem to hold sensitive data, in order, one per category+excerpt."""
    if not text or not isinstance(text, str):
        return []
    folded, where = normalise(text)
    ignore, categories = word_list()
    if ignore is not None:
        folded = ignore.sub(lambda m: " " * len(m.group(0)), folded)
    hits: list[tuple[int, Finding]] = []
    seen: set[tuple[str, str]] = set()
    for category, pattern in categories.items():
        for match in pattern.finditer(folded):
            excerpt = text[where[match.start()] : where[match.end() - 1] + 1]
            key = (category, excerpt.lower())
            if key not in seen:
                seen.add(key)
                hits.append((match.start(), Finding(category, excerpt)))
    return [finding for _start, finding in sorted(hits, key=lambda hit: hit[0])]


def sensitive_message(findings: list[Finding]) -> str:
    """One sentence naming the categories found and the words that triggered them."""
    parts = []
    for category in dict.fromkeys(f.category for f in findings):
        words = ", ".join(f"« {f.excerpt} »" for f in findings if f.category == category)
        parts.append(f"{CATEGORY_LABELS[category]} ({words})")
    return str(
        _(
            "This text seems to mention %(what)s. Keep only what the request needs; to save it "
            "as it is, send it again with acknowledge_sensitive set to true."
        )
        % {"what": "; ".join(parts)}
    )


class SensitiveContent(ServiceError):
    """Staff free text seems to hold sensitive data and was not acknowledged (HTTP 400)."""

    def __init__(self, fields: dict[str, list[str]], categories: list[str]) -> None:
        super().__init__(
            str(_("Some text seems to hold sensitive data about a person.")),
            code="sensitive_content",
        )
        self.fields = fields
        self.categories = categories


def acknowledged(data) -> bool:
    """Whether a request body confirms the staff member saw the warning and keeps the text."""
    value = data.get(ACKNOWLEDGE_FIELD) if hasattr(data, "get") else None
    if isinstance(value, list):
        value = value[-1] if value else None
    return value is True or (isinstance(value, str) and value.lower() in {"true", "1", "yes"})


def sensitive_text_check(values: dict, *, acknowledge: bool = False) -> None:
    """Refuse (SensitiveContent) free text that seems sensitive, unless acknowledged."""
    if acknowledge:
        return
    fields: dict[str, list[str]] = {}
    categories: list[str] = []
    for name, value in values.items():
        if isinstance(value, str):
            findings = sensitive_text_findings(value)
            if findings:
                fields[name] = [sensitive_message(findings)]
                categories.extend(f.category for f in findings if f.category not in categories)
    if fields:
        raise SensitiveContent(fields, categories)


def _texts(value, fields: tuple[str, ...], path: str = "") -> dict[str, str]:
    """The named free-text fields of validated data, nested ones at dotted paths."""
    found: dict[str, str] = {}
    if isinstance(value, dict):
        for key, item in value.items():
            where = f"{path}.{key}" if path else str(key)
            if key in fields and isinstance(item, str):
                found[where] = item
            elif isinstance(item, dict | list):
                found.update(_texts(item, fields, where))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found.update(_texts(item, fields, f"{path}.{index}" if path else str(index)))
    return found


def staff_text_guard(request, validated, *, fields: tuple[str, ...] = STAFF_TEXT_FIELDS) -> None:
    """Check the free text a member of staff sends; tenants' own words are never held back."""
    user = getattr(request, "user", None)
    if user is None or not getattr(user, "is_authenticated", False):
        return
    if getattr(user, "role", None) == "tenant" and not user.is_staff:
        return
    sensitive_text_check(_texts(validated, fields), acknowledge=acknowledged(request.data))
