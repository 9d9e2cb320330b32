"""Property tests of the scoring rules."""

from decimal import Decimal

from hypothesis import given
from hypothesis import strategies as st

from api.audits.scoring import DEFAULT_CRITICAL_CAP, Item, is_failed, score_items

COMPLIANCE = st.sampled_from(["compliant", "not_compliant", "na"])
SCALE = st.sampled_from(["0", "1", "2", "3", "na"])
ITEM = st.builds(
    Item,
    value=st.one_of(COMPLIANCE, SCALE),
    weight=st.integers(min_value=1, max_value=10),
    critical=st.booleans(),
)
ITEMS = st.lists(ITEM, max_size=45)
BETTER = {"not_compliant": "compliant", "0": "3", "1": "3", "2": "3"}


@given(ITEMS)
def test_score_is_between_0_and_100(items):
    result = score_items(items)
    if result.score is not None:
        assert Decimal(0) <= result.score <= Decimal(100)
        assert result.score <= result.raw


@given(ITEMS)
def test_a_failed_critical_item_caps_the_score(items):
    result = score_items(items)
    if any(i.critical and is_failed(i.value) for i in items):
        assert result.score <= DEFAULT_CRITICAL_CAP
    else:
        assert not result.capped
        assert result.score == result.raw


@given(ITEMS, st.data())
def test_fixing_a_failed_item_never_lowers_the_score(items, data):
    failed = [index for index, item in enumerate(items) if item.value in BETTER]
    if not failed:
        return
    index = data.draw(st.sampled_from(failed))
    before = score_items(items)
    fixed = list(items)
    fixed[index] = Item(BETTER[items[index].value], items[index].weight, items[index].critical)
    after = score_items(fixed)
    assert after.score >= before.score


@given(ITEMS, st.integers(min_value=1, max_value=10), st.booleans())
def test_not_applicable_items_are_left_out(items, weight, critical):
    assert score_items([*items, Item("na", weight, critical)]) == score_items(items)


def test_nothing_applicable_gives_no_score():
    assert score_items([Item("na", 3)]).score is None
    assert score_items([]).score is None


def test_known_values():
    result = score_items([Item("compliant", 3), Item("not_compliant", 1), Item("2", 3)])
    # (3 + 0 + 2) / 7
    assert result.score == Decimal("71.43")
    capped = score_items([Item("compliant", 9), Item("not_compliant", 1, critical=True)])
    assert capped.raw == Decimal("90.00") and capped.score == Decimal("50.00") and capped.capped
