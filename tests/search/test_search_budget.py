"""--budget parsing: the accepted forms and the one-line errors."""

from __future__ import annotations

import pytest

from models.params import ParameterCount
from search.budget import BudgetError, parse_budget


@pytest.mark.parametrize(
    ("text", "fraction", "count"),
    [
        ("5%", 0.05, None),
        ("100%", 1.0, None),
        ("0.5 %", 0.005, None),
        ("0.05", 0.05, None),
        ("1", 1.0, None),
        ("2M", None, 2_000_000),
        ("150k", None, 150_000),
        ("1.5G", None, 1_500_000_000),
    ],
)
def test_accepted_forms(text, fraction, count):
    budget = parse_budget(text)
    assert budget.count == count
    assert budget.fraction == pytest.approx(fraction) if fraction is not None else budget.fraction is None


@pytest.mark.parametrize("text", ["0%", "101%", "-5%", "0", "1.5", "5", "abc", "", "5%%", "0.0001k", "2 parsecs", "nan"])
def test_rejected_forms_name_the_value_and_the_accepted_forms(text):
    with pytest.raises(BudgetError) as caught:
        parse_budget(text)
    message = str(caught.value)
    assert repr(text) in message and "5%" in message and "150k" in message and "\n" not in message


def test_fraction_budget_compares_against_the_total():
    budget = parse_budget("5%")
    assert budget.allows(ParameterCount(trainable=50, total=1000))
    assert not budget.allows(ParameterCount(trainable=51, total=1000))


def test_count_budget_compares_against_trainable_parameters():
    budget = parse_budget("150k")
    assert budget.allows(ParameterCount(trainable=150_000, total=10**9))
    assert not budget.allows(ParameterCount(trainable=150_001, total=10**9))
