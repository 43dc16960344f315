"""Fill models: prices per model and their bounds, the CLI text, quotes looked up in snapshots."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.execution.fill_models import (
    DEFAULT_FILL_MODEL,
    FillModel,
    FillModelError,
    Quote,
    QuoteBook,
    parse_fill_model,
    quote_problem,
    usable_mid,
)
from engine.execution.orders import Contract
from tests.execution.conftest import EXP, make_snap, opt

PUT = opt(480.0, call=False)


@pytest.mark.parametrize(
    ("model", "buy", "sell"),
    [
        (FillModel.mid(), 1.10, 1.10),
        (FillModel.natural(), 1.20, 1.00),
        (FillModel.mid_minus(0.25), 1.15, 1.05),
        (FillModel.mid_minus(0.1), 1.12, 1.08),
    ],
)
def test_price_per_model(model: FillModel, buy: float, sell: float) -> None:
    assert model.price(1.00, 1.20, buy=True) == pytest.approx(buy)
    assert model.price(1.00, 1.20, buy=False) == pytest.approx(sell)


def test_default_is_mid_minus_a_quarter() -> None:
    assert FillModel("mid_minus", 0.25) == DEFAULT_FILL_MODEL
    assert DEFAULT_FILL_MODEL.label == "mid − 25% of the spread, no partial fills"


@settings(max_examples=200, deadline=None, derandomize=True)
@given(
    bid=st.floats(0.0, 500.0),
    width=st.floats(0.0, 50.0),
    fraction=st.floats(0.0, 0.5),
    buy=st.booleans(),
)
def test_price_never_leaves_the_quote_and_worsens_with_the_fraction(
    bid: float, width: float, fraction: float, buy: bool
) -> None:
    ask = bid + width
    price = FillModel.mid_minus(fraction).price(bid, ask, buy)
    assert bid <= price <= ask
    mid = FillModel.mid().price(bid, ask, buy)
    natural = FillModel.natural().price(bid, ask, buy)
    assert natural == (ask if buy else bid)
    # A larger fraction is never a better price for the side trading.
    assert (price >= mid - 1e-9) if buy else (price <= mid + 1e-9)


def test_partial_units() -> None:
    assert FillModel.mid().units(8) == 8
    assert FillModel.mid(max_units=5).units(8) == 5
    assert FillModel.mid(max_units=5).units(3) == 3


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("mid", FillModel.mid()),
        ("natural", FillModel.natural()),
        ("mid-minus:0.25", FillModel.mid_minus(0.25)),
        ("mid_minus:25%", FillModel.mid_minus(0.25)),
        (" Mid-Minus:0.5 ", FillModel.mid_minus(0.5)),
        ("mid-minus:0", FillModel.mid_minus(0.0)),
        ("natural,partial:5", FillModel.natural(max_units=5)),
        ("mid-minus:.1, partial:2", FillModel.mid_minus(0.1, max_units=2)),
    ],
)
def test_parse(text: str, expected: FillModel) -> None:
    model = parse_fill_model(text)
    assert model == expected
    assert parse_fill_model(model.text) == model


@pytest.mark.parametrize(
    "text",
    [
        "",
        "best",
        "mid:0.1",
        "natural:0.5",
        "mid-minus",
        "mid-minus:",
        "mid-minus:0.6",
        "mid-minus:60%",
        "mid-minus:-0.1",
        "mid-minus:abc",
        "mid,partial:0",
        "mid,partial:x",
        "mid,partial",
        "mid,slow:3",
        "mid,partial:2,partial:3",
    ],
)
def test_parse_rejects_with_the_valid_forms(text: str) -> None:
    with pytest.raises(FillModelError) as err:
        parse_fill_model(text)
    assert "mid-minus:F" in str(err.value) and "partial:N" in str(err.value)
    assert isinstance(err.value, ValueError)


@pytest.mark.parametrize(
    ("name", "fraction", "max_units"),
    [("mid", 0.25, None), ("natural", 0.3, None), ("mid_minus", 0.7, None),
     ("mid_minus", -0.1, None), ("midpoint", 0.0, None), ("mid", 0.0, 0),
     ("mid", 0.0, True), ("mid_minus", math.nan, None)],
)  # fmt: skip
def test_inconsistent_models_are_refused(name: str, fraction: float, max_units: int | None) -> None:
    with pytest.raises(FillModelError):
        FillModel(name, fraction, max_units)  # type: ignore[arg-type]


def test_describe_and_labels() -> None:
    model = FillModel.mid_minus(0.1, max_units=3)
    assert model.describe() == {
        "name": "mid_minus",
        "fraction": 0.1,
        "partial": True,
        "max_units": 3,
        "text": "mid-minus:0.1,partial:3",
        "label": "mid − 10% of the spread, at most 3 units per order per tick",
    }
    assert "optimistic" in FillModel.mid().label
    assert FillModel.natural().label.startswith("natural (buy at the ask")


# ----------------------------------------------------------------------------- quotes


def test_option_quote_matches_expiry_strike_and_right() -> None:
    call = opt(480.0, call=True)
    later = opt(480.0, call=False, expiry=EXP.replace(day=28))
    snap = make_snap([(PUT, 1.0, 1.2), (call, 22.0, 22.4), (later, 2.0, 2.3)])
    book = QuoteBook(snap)
    assert book.quote(PUT) == Quote(1.0, 1.2)
    assert book.quote(call) == Quote(22.0, 22.4)
    assert book.quote(later) == Quote(2.0, 2.3)
    assert book.quote(opt(485.0, call=False)) is None
    assert book.quote(opt(480.0, call=False, symbol="QQQ")) is None
    assert book.mark(PUT) == pytest.approx(1.1)


def test_stock_quote_from_bid_ask_or_half_a_cent_around_the_price() -> None:
    shares = Contract("SPY", "stock")
    assert QuoteBook(make_snap(bid=499.98, ask=500.02)).quote(shares) == Quote(499.98, 500.02)
    q = QuoteBook(make_snap()).quote(shares)
    assert q is not None and (q.bid, q.ask) == pytest.approx((499.995, 500.005))
    assert QuoteBook(make_snap(price=None)).quote(shares) is None
    assert QuoteBook(make_snap()).mark(shares) == 500.0


def test_future_quote_is_one_tick_either_side() -> None:
    snap = make_snap(futures={"ES": 5300.0, "RTY": 2050.0})
    es = QuoteBook(snap).quote(Contract("ES", "future"))
    rty = QuoteBook(snap).quote(Contract("RTY", "future"))
    assert es == Quote(5299.75, 5300.25)
    assert rty is not None and (rty.bid, rty.ask) == pytest.approx((2049.9, 2050.1))
    assert QuoteBook(snap).quote(Contract("NQ", "future")) is None
    assert QuoteBook(snap).mark(Contract("ES", "future")) == 5300.0


@pytest.mark.parametrize(
    ("bid", "ask", "buy", "fragment"),
    [
        (math.nan, 1.2, True, "no bid or no ask"),
        (1.0, math.nan, False, "no bid or no ask"),
        (1.3, 1.2, True, "crossed quote (bid 1.3 > ask 1.2)"),
        (0.0, 0.0, True, "cannot buy at an ask of 0"),
        (-0.05, 0.1, False, "negative bid"),
    ],
)
def test_quote_problems_name_the_contract(bid: float, ask: float, buy: bool, fragment: str) -> None:
    problem = quote_problem(PUT, Quote(bid, ask), buy)
    assert problem is not None
    assert PUT.key in problem and fragment in problem
    assert usable_mid(Quote(bid, ask)) is None or (bid, ask) == (0.0, 0.0)


def test_quote_problem_accepts_good_quotes_and_selling_at_zero() -> None:
    assert quote_problem(PUT, Quote(1.0, 1.2), buy=True) is None
    assert quote_problem(PUT, Quote(0.0, 0.0), buy=False) is None
    assert "no quote for SPY 2024-06-21 480P" in str(quote_problem(PUT, None, buy=True))


@settings(max_examples=100, deadline=None, derandomize=True)
@given(fraction=st.floats(0.0, 0.5), max_units=st.none() | st.integers(1, 1000))
def test_text_reads_back_to_the_same_model(fraction: float, max_units: int | None) -> None:
    model = FillModel.mid_minus(fraction, max_units)
    assert parse_fill_model(model.text) == model
    assert FillModel.mid_minus(0.125).label.startswith("mid − 12.5% of the spread")
