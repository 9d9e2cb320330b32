"""How an audit is scored: pure functions, so the rules are tested on their own.

Each applicable answer earns a fraction of its question's weight: compliant 1, not compliant 0,
a 0-3 scale value v earns v/3. Not applicable answers are left out of both sums. The score is
100 x earned / possible, rounded to two decimals; with no applicable answer there is no score.
A failed critical item (not compliant, or 0 or 1 on the scale) caps the score at the policy's
cap, so a filthy bin room can never be hidden by a spotless hall.
"""

from collections.abc import Iterable
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal

DEFAULT_CRITICAL_CAP = Decimal(50)
TWO_PLACES = Decimal("0.01")
FAILED_SCALE_MAX = 1


@dataclass(frozen=True)
class Item:
    """One answer as the scoring sees it."""

    value: str
    weight: int
    critical: bool = False


@dataclass(frozen=True)
class Score:
    """The outcome: the score (None when nothing applied), the uncapped one, whether capped."""

    score: Decimal | None
    raw: Decimal | None
    capped: bool


def earned(value: str) -> Decimal | None:
    """The fraction of its weight an answer earns (None: not applicable)."""
    if value == "compliant":
        return Decimal(1)
    if value == "not_compliant":
        return Decimal(0)
    if value in ("0", "1", "2", "3"):
        return Decimal(int(value)) / Decimal(3)
    return None


def is_failed(value: str) -> bool:
    """Whether an answer calls for corrective work."""
    if value == "not_compliant":
        return True
    return value in ("0", "1") and int(value) <= FAILED_SCALE_MAX


def score_items(items: Iterable[Item], *, cap: Decimal = DEFAULT_CRITICAL_CAP) -> Score:
    """Score a set of answers (an audit, or one area of it)."""
    cap = Decimal(cap)
    possible = Decimal(0)
    total = Decimal(0)
    critical_failed = False
    for item in items:
        fraction = earned(item.value)
        if fraction is None:
            continue
        possible += item.weight
        total += fraction * item.weight
        if item.critical and is_failed(item.value):
            critical_failed = True
    if possible == 0:
        return Score(None, None, False)
    raw = (Decimal(100) * total / possible).quantize(TWO_PLACES, rounding=ROUND_HALF_UP)
    if critical_failed and raw > cap:
        return Score(cap.quantize(TWO_PLACES), raw, True)
    return Score(raw, raw, False)


def mean(values: Iterable[Decimal | None]) -> Decimal | None:
    """The mean of the scores that exist (None when there are none)."""
    present = [Decimal(v) for v in values if v is not None]
    if not present:
        return None
    return (sum(present) / len(present)).quantize(TWO_PLACES, rounding=ROUND_HALF_UP)
