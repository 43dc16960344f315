"""Snapshot enrichment: IV and Greeks recovered from quotes priced at known vols; features
reach the rule vocabulary."""

from __future__ import annotations

import dataclasses
import math
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import numpy as np
import pytest

from engine.dsl.ruleset import load_ruleset
from engine.dsl.runtime import evaluate
from engine.state.enrich import (
    UnderlyingHistory,
    enrich_chain,
    enrich_snapshot,
    enrich_underlying,
    year_fractions,
)
from engine.state.snapshot import (
    Chain,
    MarketState,
    Position,
    Snapshot,
    UnderlyingState,
)

NY = ZoneInfo("America/New_York")
ASOF = datetime(2024, 3, 15, 10, 30, tzinfo=NY)
S, R, Q = 100.0, 0.04, 0.015
EXPIRIES = [date(2024, 3, 22), date(2024, 4, 5), date(2024, 4, 19), date(2024, 5, 17),
            date(2024, 6, 21), date(2024, 9, 20)]  # fmt: skip
STRIKES = np.arange(60.0, 141.0, 1.0)


def _ncdf(x: np.ndarray) -> np.ndarray:
    return np.vectorize(lambda v: 0.5 * math.erfc(-v / math.sqrt(2.0)))(x)


def bsm(c: np.ndarray, k: np.ndarray, t: np.ndarray, sig: np.ndarray) -> dict[str, np.ndarray]:
    """Independent European BSM with dividend yield: price and Greeks, per year and per 1.00."""
    st = sig * np.sqrt(t)
    d1 = (np.log(S / k) + (R - Q + 0.5 * sig**2) * t) / st
    d2 = d1 - st
    dq, dr = np.exp(-Q * t), np.exp(-R * t)
    pdf = np.exp(-0.5 * d1**2) / math.sqrt(2 * math.pi)
    call = S * dq * _ncdf(d1) - k * dr * _ncdf(d2)
    put = k * dr * _ncdf(-d2) - S * dq * _ncdf(-d1)
    decay = -S * dq * pdf * sig / (2 * np.sqrt(t))
    return {
        "price": np.where(c, call, put),
        "delta": np.where(c, dq * _ncdf(d1), dq * (_ncdf(d1) - 1)),
        "gamma": dq * pdf / (S * st),
        "vega": S * dq * pdf * np.sqrt(t),
        "theta": np.where(
            c,
            decay - R * k * dr * _ncdf(d2) + Q * S * dq * _ncdf(d1),
            decay + R * k * dr * _ncdf(-d2) - Q * S * dq * _ncdf(-d1),
        ),
    }


def t_years(expiry: date, asof: datetime = ASOF) -> float:
    close = datetime(expiry.year, expiry.month, expiry.day, 16, tzinfo=NY)
    return (close.timestamp() - asof.timestamp()) / (365 * 86400)


def priced_chain(smile: float = 0.0, level: float = 0.21) -> tuple[Chain, np.ndarray, dict]:
    """A chain quoted around mid = BSM price for IV = level + smile * ln(K/F), +/- 1%."""
    n = STRIKES.size
    exp = np.repeat(np.array(EXPIRIES, dtype="datetime64[D]"), 2 * n)
    k = np.tile(np.r_[STRIKES, STRIKES], len(EXPIRIES))
    c = np.tile(np.r_[np.ones(n, bool), np.zeros(n, bool)], len(EXPIRIES))
    t = np.array([t_years(d) for d in exp.astype(object)])
    f = S * np.exp((R - Q) * t)
    sig = level + smile * np.log(k / f)
    ref = bsm(c, k, t, sig)
    px = ref["price"]
    chain = Chain.from_columns("SPY", exp, k, c, bid=px * 0.99, ask=px * 1.01)
    return chain, sig, ref


def test_year_fractions_to_the_new_york_close_across_dst() -> None:
    # 2024-03-10 is the US spring-forward day: 7 days and 5 hours, not 6.
    asof = datetime(2024, 3, 8, 10, 0, tzinfo=NY)
    t = year_fractions(np.array(["2024-03-15", "2024-03-08"], dtype="datetime64[D]"), asof)
    assert t[0] == (7 * 24 + 5) * 3600 / (365 * 86400)
    assert t[1] == 6 * 3600 / (365 * 86400)
    same = year_fractions(np.array(["2024-03-15"], dtype="datetime64[D]"), asof.astimezone(UTC))
    assert same[0] == t[0]
    with pytest.raises(ValueError, match="timezone"):
        year_fractions(np.array(["2024-03-15"], dtype="datetime64[D]"), datetime(2024, 3, 8))


def test_enrich_chain_recovers_iv_and_greeks() -> None:
    chain, sig, ref = priced_chain(smile=-0.25)
    # Where vega is tiny (deep ITM/OTM) the price barely depends on IV, so only contracts
    # whose price moves at least 0.01 per 1.00 of vol are held to 1e-9.
    good = ref["vega"] > 1e-2
    assert good.sum() > 400
    out = enrich_chain(chain, S, ASOF, R, Q)
    assert isinstance(out, Chain) and len(out) == len(chain)
    np.testing.assert_allclose(out.iv[good], sig[good], rtol=1e-9)
    np.testing.assert_allclose(out.delta[good], ref["delta"][good], rtol=1e-8, atol=1e-10)
    np.testing.assert_allclose(out.gamma[good], ref["gamma"][good], rtol=1e-8)
    # Chain units: vega per vol point, theta per calendar day.
    np.testing.assert_allclose(out.vega[good], ref["vega"][good] / 100, rtol=1e-8)
    np.testing.assert_allclose(out.theta[good], ref["theta"][good] / 365, rtol=1e-8)
    np.testing.assert_array_equal(out.bid, chain.bid)  # quotes untouched
    assert np.isnan(chain.iv).all()  # the input chain is not modified


def test_enrich_chain_unquotable_rows() -> None:
    chain, _, _ = priced_chain()
    bid, ask, iv = chain.bid.copy(), chain.ask.copy(), chain.iv.copy()
    bid[0], ask[0] = ask[0] + 0.1, bid[0]  # crossed
    bid[1] = ask[1] = np.nan  # empty
    iv[1] = 0.33  # the feed's own IV is kept where ours cannot be computed
    out = enrich_chain(dataclasses.replace(chain, bid=bid, ask=ask, iv=iv), S, ASOF, R, Q)
    assert np.isnan(out.iv[0]) and np.isnan(out.delta[0])
    assert out.iv[1] == 0.33 and np.isnan(out.delta[1])
    tv = chain.bid - np.maximum(0, np.where(chain.is_call, 1, -1) * (S - chain.strike))
    assert np.isfinite(out.iv[2:][tv[2:] > 1e-3]).all()

    expired = enrich_chain(chain, S, datetime(2024, 12, 1, 10, tzinfo=NY), R, Q)
    assert np.isnan(expired.iv).all() and np.isnan(expired.theta).all()
    assert enrich_chain(chain, None, ASOF, R, Q) is chain
    assert enrich_chain(chain, math.nan, ASOF, R, Q) is chain


def histories(
    current_rv: float = 0.1, iv_lo: float = 0.10, iv_hi: float = 0.30
) -> dict[str, UnderlyingHistory]:
    """SPY with alternating +/- daily returns; QQQ = 1.3 x SPY returns; IV history lo..hi."""
    r = np.tile([1.0, -1.0], 150) * current_rv / math.sqrt(252)
    spy = 400 * np.exp(np.cumsum(r))
    qqq = 300 * np.exp(np.cumsum(1.3 * r))
    past_iv = np.linspace(iv_lo, iv_hi, 251)
    return {
        "SPY": UnderlyingHistory(close=spy, atm_iv=past_iv),
        "QQQ": UnderlyingHistory(close=qqq, atm_iv=past_iv),
    }


def test_enrich_underlying_flat_vol() -> None:
    chain = enrich_chain(priced_chain(level=0.21)[0], S, ASOF, R, Q)
    h = histories()
    u = UnderlyingState(symbol="SPY", price=S, dividend_yield=Q, atm_iv=0.5, beta=None)
    out = enrich_underlying(u, chain, h["SPY"], ASOF, r=R, benchmark_close=h["SPY"].close)
    assert out.atm_iv == pytest.approx(0.21, abs=1e-10)
    assert out.iv_30d == out.atm_iv
    assert out.skew_25d_ratio == pytest.approx(1.0, abs=1e-9)
    assert out.risk_reversal_25d == pytest.approx(0.0, abs=1e-10)
    assert out.skew_slope == pytest.approx(0.0, abs=1e-8)
    assert out.term_slope == pytest.approx(1.0, abs=1e-9)
    # Rank of 0.21 in 0.10..0.30 (251 past values plus the current one).
    assert out.iv_rank == pytest.approx((0.21 - 0.10) / 0.20, abs=1e-9)
    assert out.iv_percentile == pytest.approx(138 / 252, abs=1e-15)
    rets = np.diff(np.log(h["SPY"].close))[-20:]
    assert out.realized_vol_20d == pytest.approx(np.std(rets, ddof=1) * math.sqrt(252), rel=1e-12)
    assert out.realized_vol_20d == pytest.approx(0.1 * math.sqrt(20 / 19), rel=1e-9)
    assert out.beta == 1.0
    assert isinstance(out.atm_iv, float) and type(out.beta) is float


def test_enrich_underlying_skewed_chain_and_beta() -> None:
    chain = enrich_chain(priced_chain(smile=-0.3)[0], S, ASOF, R, Q)
    h = histories()
    u = UnderlyingState(symbol="QQQ", price=S, dividend_yield=Q)
    out = enrich_underlying(u, chain, h["QQQ"], ASOF, r=R, benchmark_close=h["SPY"].close)
    assert out.atm_iv == pytest.approx(0.21, rel=1e-6)  # the smile level at the forward
    assert out.skew_slope == pytest.approx(-0.3, rel=1e-6)
    assert out.skew_25d_ratio is not None and out.skew_25d_ratio > 1.1
    assert out.risk_reversal_25d is not None and out.risk_reversal_25d < 0
    assert out.beta == pytest.approx(1.3, rel=1e-9)


def test_enrich_underlying_keeps_feed_values_without_inputs() -> None:
    u = UnderlyingState(symbol="SPY", price=S, atm_iv=0.21, skew_25d_ratio=1.2, beta=0.9)
    assert enrich_underlying(u, None, None, ASOF) == u
    short = UnderlyingHistory(close=np.array([400.0, 401.0]), atm_iv=np.array([0.2, 0.3]))
    out = enrich_underlying(u, None, short, ASOF)  # too little history: NaN, feed kept
    assert out == u
    out = enrich_underlying(u, None, histories()["SPY"], ASOF)  # the feed's atm_iv is ranked
    assert out.iv_rank == pytest.approx(0.55, abs=1e-12)
    assert out.skew_25d_ratio == 1.2 and out.beta == 0.9


def _snapshot(chain: Chain | None, positions: tuple[Position, ...] = ()) -> Snapshot:
    unders = {
        "SPY": UnderlyingState(symbol="SPY", price=S, dividend_yield=Q),
        "QQQ": UnderlyingState(symbol="QQQ", price=50.0),
    }
    return Snapshot(
        time=ASOF,
        market=MarketState(session="regular", regime="normal"),
        underlyings=unders,
        chains={"SPY": chain} if chain is not None else {},
        positions=positions,
    )


def test_enriched_snapshot_feeds_the_rules() -> None:
    rs = load_ruleset("v6")
    chain = priced_chain(level=0.21)[0]
    before = _snapshot(chain)
    fired = {d.rule_id for d in evaluate(rs, before)[0]}
    assert "ic_entry" not in fired  # iv_rank and iv_premium unknown: the rule cannot fire

    after = enrich_snapshot(before, histories(), R, {"SPY": Q})
    spy = after.underlyings["SPY"]
    assert spy.iv_rank == pytest.approx(0.55, abs=1e-9)
    assert spy.atm_iv is not None and spy.realized_vol_20d is not None
    assert spy.atm_iv - spy.realized_vol_20d > 0
    assert np.isfinite(after.chains["SPY"].delta).any()
    decisions = [d for d in evaluate(rs, after)[0] if d.rule_id == "ic_entry"]
    assert [d.symbol for d in decisions] == ["SPY"]

    # A steep put skew makes the put-credit-spread rule read skew_25d_ratio >= 1.10; the IV
    # history is higher, so IV rank is low and the iron condor (higher priority) stays out.
    hist = histories(iv_lo=0.2, iv_hi=0.5)
    skewed = enrich_snapshot(_snapshot(priced_chain(smile=-0.4)[0]), hist, R, {"SPY": Q})
    ratio = skewed.underlyings["SPY"].skew_25d_ratio
    assert ratio is not None and ratio >= 1.10
    assert skewed.underlyings["SPY"].iv_rank is not None
    assert skewed.underlyings["SPY"].iv_rank < 0.3
    fired = {d.rule_id for d in evaluate(rs, skewed)[0]}
    assert "pcs_entry" in fired and "ic_entry" not in fired


def test_enrich_snapshot_beta_weighted_delta() -> None:
    pos = tuple(
        Position(
            id=f"p{i}",
            strategy="iron_condor",
            symbol=sym,
            quantity=1,
            delta=d,
            opened_at=ASOF - timedelta(days=3),
        )
        for i, (sym, d) in enumerate([("SPY", -20.0), ("QQQ", 100.0)])
    )
    out = enrich_snapshot(_snapshot(None, pos), histories(), R, {})
    beta = out.underlyings["QQQ"].beta
    assert beta == pytest.approx(1.3, rel=1e-9)
    assert out.portfolio.bw_delta_spy == pytest.approx((-20 * 1.0 * S + 100 * beta * 50.0) / S)
    missing = enrich_snapshot(_snapshot(None, pos), {}, R, {})  # no betas: stays unknown
    assert missing.portfolio.bw_delta_spy is None
