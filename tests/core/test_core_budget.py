"""Budgets (core.budget): the accepted forms, the one-line errors, the checks and the dashboard's line.

The CLI and the dashboard parse with this one parser, so no test of their agreement is needed."""

from __future__ import annotations

import pytest

from typing import NamedTuple

from core.budget import Budget, BudgetError, parse_budget


class ParameterCount(NamedTuple):  # the fields of models.params.ParameterCount that a budget reads
    trainable: int
    total: int


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


@pytest.mark.parametrize(
    ("text", "max_pct", "max_params"), [("5%", 5.0, None), (" 0.5 % ", 0.5, None), ("0.05", 5.0, None), ("2M", None, 2_000_000)]
)
def test_text_is_kept_as_typed_and_limits_read_both_ways(text, max_pct, max_params):
    budget = parse_budget(text)
    assert (budget.text, budget.max_pct, budget.max_params) == (text.strip(), max_pct, max_params)


def test_stored_rows_within_the_budget():
    assert parse_budget("5%").allows_row(5.0, 10**9) and not parse_budget("5%").allows_row(5.01, 1)
    assert parse_budget("150k").allows_row(99.0, 150_000) and not parse_budget("150k").allows_row(0.1, 150_001)


def test_budget_line_positions() -> None:
    pct, count = Budget("5%", fraction=0.05), Budget("150k", count=150_000)
    assert pct.line_position("trainable_pct", None) == 5.0
    assert pct.line_position("trainable_params", 1_000_000) == 50_000
    assert pct.line_position("trainable_params", None) is None
    assert count.line_position("trainable_pct", 1_000_000) == 15.0
    assert count.line_position("trainable_params", None) == 150_000
    assert count.line_position("train_seconds", 1_000_000) is None
