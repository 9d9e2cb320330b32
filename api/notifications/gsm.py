"""SMS encoding and segment counting (3GPP TS 23.038, "GSM 03.38").

A message is sent in the GSM 7-bit alphabet when every character is in its basic set or its
extension table (an extension character takes two septets); otherwise the whole message is
sent in UCS-2. One segment holds 160 septets or 70 UCS-2 units; a longer message is split
into parts of 153 septets or 67 units (the rest carries the concatenation header), and a part
never splits an extension pair or a surrogate pair.
"""

from dataclasses import asdict, dataclass

GSM7_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞ\x1bÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
GSM7_EXTENSION = frozenset("\f^{}\\[~]|€")

GSM7_SINGLE, GSM7_PART = 160, 153
UCS2_SINGLE, UCS2_PART = 70, 67

# Latin characters outside GSM-7 that French, English and other Latin-script texts use, with
# the nearest GSM-7 spelling: one accent less is cheaper than a message in UCS-2, which holds
# less than half as many characters per segment.
_FOLD = {
    "â": "a", "ê": "e", "î": "i", "ô": "o", "û": "u", "ë": "e", "ï": "i", "ÿ": "y",
    "ç": "c", "á": "a", "í": "i", "ó": "o", "ú": "u", "ã": "a", "õ": "o",
    "À": "A", "Â": "A", "È": "E", "Ê": "E", "Ë": "E", "Î": "I", "Ï": "I", "Ô": "O",
    "Û": "U", "Ù": "U", "Œ": "OE", "œ": "oe", "Á": "A", "Í": "I", "Ó": "O", "Ú": "U",
    "\u2019": "'", "\u2018": "'", "\u201c": '"', "\u201d": '"', "«": '"', "»": '"',
    "\u2013": "-", "\u2014": "-", "\u2026": "...", "\u00a0": " ", "\u202f": " ",
    "\u2009": " ", "\u2022": "-", "\t": " ",
}  # fmt: skip


@dataclass(frozen=True)
class SegmentInfo:
    """How an SMS text travels: its encoding and how many segments it takes."""

    encoding: str
    characters: int
    units: int
    segments: int
    per_segment: int
    remaining: int

    def as_dict(self) -> dict:
        return asdict(self)


def is_gsm7(text: str) -> bool:
    """Whether the whole text can be sent in the GSM 7-bit alphabet."""
    return all(ch in GSM7_BASIC or ch in GSM7_EXTENSION for ch in text)


def fold_to_gsm7(text: str) -> str:
    """The text with Latin characters outside GSM-7 replaced by their nearest GSM-7 spelling.

    A text that would still need UCS-2 (Arabic, emoji…) is returned unchanged: folding only
    helps when it makes the whole message GSM-7.
    """
    folded = "".join(_FOLD.get(ch, ch) for ch in text)
    return folded if is_gsm7(folded) else text


def _split(costs: list[int], single: int, part: int) -> tuple[int, int]:
    """(segments, units in the last segment) for characters of the given costs."""
    total = sum(costs)
    if total <= single:
        return 1, total
    segments, used = 1, 0
    for cost in costs:
        if used + cost > part:
            segments += 1
            used = 0
        used += cost
    return segments, used


def segment_info(text: str) -> SegmentInfo:
    """Encoding, length and segment count of an SMS text as it will be sent."""
    if is_gsm7(text):
        costs = [2 if ch in GSM7_EXTENSION else 1 for ch in text]
        encoding, single, part = "GSM-7", GSM7_SINGLE, GSM7_PART
    else:
        costs = [2 if ord(ch) > 0xFFFF else 1 for ch in text]
        encoding, single, part = "UCS-2", UCS2_SINGLE, UCS2_PART
    segments, used = _split(costs, single, part)
    per_segment = single if segments == 1 else part
    return SegmentInfo(
        encoding=encoding,
        characters=len(text),
        units=sum(costs),
        segments=segments,
        per_segment=per_segment,
        remaining=per_segment - used,
    )
