"""Which entrances a round inspects: a reproducible draw that covers every entrance per cycle.

The method follows the spirit of EN 13549 (cleaning quality measuring systems): a residence is
a lot of N entrances, each round inspects a sample whose size grows with N (the table below
follows the general inspection level of ISO 2859-1, which EN 13549 builds on), and the draw is
random but reproducible from a stored seed. Two rules are added for a landlord's rounds:

- coverage: a cycle ends when every entrance has been inspected once; at least half of each
  round's places (rounded up) go to entrances not yet inspected in the cycle, so a cycle lasts
  at most ceil(N / ceil(n / 2)) rounds;
- follow-up: entrances that failed recently (score below the penalty threshold, or a failed
  critical item) take the other places first, so they come back sooner than the cycle.

The draw is a pure function of (entrances, already covered, recently failed, size, seed), and
a round stores all of them, so anyone can replay it and get the same entrances.
"""

import math
import random
from dataclasses import dataclass

# (largest lot size, sample size)
SAMPLE_TABLE = ((3, 0), (8, 3), (15, 4), (25, 5), (50, 8), (90, 13), (150, 20))
LARGEST_SAMPLE = 32


def sample_size_for(lot_size: int) -> int:
    """How many entrances a round inspects in a residence of `lot_size` entrances."""
    if lot_size <= 0:
        return 0
    for largest, size in SAMPLE_TABLE:
        if lot_size <= largest:
            return size or lot_size
    return LARGEST_SAMPLE


@dataclass(frozen=True)
class Draw:
    """The entrances drawn, in walking order, each with why; and the cycle they belong to."""

    picks: list[tuple[str, str]]  # (entrance id, "recent_failure" | "cycle")
    new_cycle: bool


def draw(
    *,
    entrances: list[str],
    covered: set[str],
    recently_failed: set[str],
    size: int,
    seed: int,
) -> Draw:
    """Draw `size` entrances reproducibly (ids are compared as strings, sorted first)."""
    pool = sorted(set(entrances))
    size = max(0, min(size, len(pool)))
    if size == 0:
        return Draw([], False)
    rng = random.Random(seed)
    covered = set(covered) & set(pool)
    new_cycle = covered == set(pool)
    if new_cycle:
        covered = set()
    uncovered = [e for e in pool if e not in covered]
    rng.shuffle(uncovered)
    failed = [e for e in pool if e in recently_failed]
    rng.shuffle(failed)

    reserved = min(len(uncovered), math.ceil(size / 2))
    failure_places = size - reserved
    picks: list[tuple[str, str]] = []
    chosen: set[str] = set()
    for entrance in failed[:failure_places]:
        picks.append((entrance, "recent_failure"))
        chosen.add(entrance)
    for entrance in uncovered:
        if len(picks) >= size:
            break
        if entrance not in chosen:
            picks.append((entrance, "cycle"))
            chosen.add(entrance)
    if len(picks) < size:
        rest = [e for e in pool if e not in chosen]
        rng.shuffle(rest)
        for entrance in rest[: size - len(picks)]:
            picks.append((entrance, "cycle"))
    return Draw(picks, new_cycle)
