"""The inspection draw: reproducible from its seed, every entrance covered within a cycle."""

import itertools
import math
import random

from hypothesis import given, settings
from hypothesis import strategies as st

from api.audits.sampling import draw, sample_size_for


def test_sample_size_grows_with_the_lot():
    assert sample_size_for(0) == 0
    assert sample_size_for(2) == 2
    assert sample_size_for(8) == 3
    assert sample_size_for(40) == 8
    sizes = [sample_size_for(n) for n in range(1, 400)]
    assert all(a <= b for a, b in itertools.pairwise(sizes))


@given(
    st.integers(min_value=1, max_value=40),
    st.integers(min_value=1, max_value=10),
    st.integers(min_value=0, max_value=2**62),
)
def test_same_inputs_same_draw(count, size, seed):
    entrances = [f"e{i:03d}" for i in range(count)]
    covered = set(entrances[: count // 3])
    failed = set(entrances[::4])
    first = draw(entrances=entrances, covered=covered, recently_failed=failed, size=size, seed=seed)
    again = draw(
        entrances=list(reversed(entrances)),
        covered=covered,
        recently_failed=failed,
        size=size,
        seed=seed,
    )
    assert first == again
    picked = [e for e, _ in first.picks]
    assert len(picked) == len(set(picked)) == min(size, count)


@settings(max_examples=60)
@given(
    st.integers(min_value=1, max_value=30),
    st.integers(min_value=1, max_value=8),
    st.integers(min_value=0, max_value=2**32),
    st.floats(min_value=0, max_value=1),
)
def test_every_entrance_is_covered_within_a_cycle(count, size, seed, failure_rate):
    """Whatever fails, each cycle inspects every entrance in at most ceil(N / ceil(n/2)) rounds."""
    entrances = [f"e{i:03d}" for i in range(count)]
    size = min(size, count)
    bound = math.ceil(count / math.ceil(size / 2))
    rng = random.Random(seed)
    covered: set[str] = set()
    failed: set[str] = set()
    rounds_in_cycle = 0
    cycles = 0
    for round_number in range(4 * bound):
        result = draw(
            entrances=entrances,
            covered=covered,
            recently_failed=failed,
            size=size,
            seed=seed + round_number,
        )
        if result.new_cycle:
            covered = set()
            rounds_in_cycle = 0
        rounds_in_cycle += 1
        picked = [e for e, _ in result.picks]
        covered |= set(picked)
        failed = {e for e in picked if rng.random() < failure_rate}
        assert rounds_in_cycle <= bound
        if covered == set(entrances):
            cycles += 1
    assert cycles >= 3


def test_recent_failures_come_back_first():
    entrances = [f"e{i}" for i in range(10)]
    result = draw(
        entrances=entrances,
        covered={"e1", "e2"},
        recently_failed={"e1"},
        size=4,
        seed=1,
    )
    assert ("e1", "recent_failure") in result.picks
    assert sum(1 for _, why in result.picks if why == "cycle") >= 2
