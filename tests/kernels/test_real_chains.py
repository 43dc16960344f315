"""Implied volatility on real CBOE chains against the vendor's IV and delta columns."""

from __future__ import annotations

import math
import os
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from engine.feeds.cboe_chains import HEADER, OptionChain, load_cboe_chain
from engine.kernels.iv import implied_vol_from_quotes


def _data_dir() -> Path:
    env = os.environ.get("V6_DATA")
    return Path(env) if env else Path(__file__).resolve().parents[2].parent / "shared" / "data"


CHAINS_DIR = _data_dir() / "option_chains"


@dataclass(frozen=True)
class Setup:
    """Market inputs the file does not carry.

    close: the underlying's official close (README table). Line 2 of the file is an
    after-hours quote and would misprice every option against the 16:00 option quotes.
    rate: continuously compounded short rate, a constant per date (≈ SOFR / 3-month T-bill on
    the day: 5.3 % in Sep 2023, 4.3 % in Jun 2025, 4.1 % after the Sep 2025 cut). A flat rate
    is good to a few basis points for the maturities that matter here.
    div_yield: continuous dividend yield, SPY ≈ SPX trailing yield (1.5 % in 2023, 1.3 % in
    2025). SPY actually pays discrete quarterly dividends; see the notes below.
    """

    file: str
    close: float
    rate: float
    div_yield: float


SETUPS = [
    Setup("spy_chain_2023-09-14_cboe_delayed.csv", 450.36, 0.053, 0.015),
    Setup("spx_chain_2023-09-14_cboe_delayed.csv", 4505.10, 0.053, 0.015),
    Setup("spy_chain_2025-06-09_cboe_delayed.csv", 599.68, 0.043, 0.013),
    Setup("spy_chain_2025-09-25_cboe_delayed.csv", 658.05, 0.041, 0.013),
]

# Option quotes are taken at the 16:00 ET close. PM-settled options (SPY, SPXW) expire at
# 16:00 ET, so T is whole calendar days / 365; AM-settled SPX options settle on the opening
# print (9:30 ET), 6.5 hours earlier.
AM_SETTLED_ROOTS = ("SPX",)
AM_SHIFT_DAYS = 6.5 / 24.0

MONEYNESS_BUCKETS = [  # by |BSM delta| at our IV (call delta for calls, -put delta for puts)
    ("deep ITM", 0.9, 1.01),
    ("ITM", 0.6, 0.9),
    ("ATM", 0.4, 0.6),
    ("OTM", 0.1, 0.4),
    ("deep OTM", 0.0, 0.1),
]
DTE_BUCKETS = [
    ("1-7", 1, 7),
    ("8-30", 8, 30),
    ("31-90", 31, 90),
    ("91-365", 91, 365),
    ("> 365", 366, 100_000),
]

# Near the money, where both sides are liquid: |ln K/F| < 0.1, 7-120 days, spread < 20 % of
# mid. Measured medians of |σ̂ - vendor|: 0.62 / 0.63 / 0.75 / 0.36 vol points and of
# |Δ - vendor Δ|: 0.011 / 0.018 / 0.008 / 0.005 (SPY 2023, SPX 2023, SPY Jun 2025, SPY Sep
# 2025). The bounds leave about a third on top: the residual is the forward (below), not the
# solver, whose own error is 1e-12.
NEAR_MEDIAN_IV_POINTS = 1.0
NEAR_MEDIAN_DELTA = 0.025

# What differs from the vendor, and why the agreement is not closer:
# - SPY options are American. Deep ITM puts (and calls before ex-dividend dates) carry an
#   early-exercise premium that a European BSM inversion reads as extra volatility, so our IV
#   is above the vendor's (who presumably uses an American model) in the ITM buckets.
#   SPX options are European: there, ITM and OTM agree alike.
# - Dividends: SPY pays discrete quarterly dividends; a flat continuous yield shifts the
#   forward by a few cents for short expiries that straddle an ex-date, which moves the IV of
#   ITM and short-dated options most.
# - Rates: one flat rate per day instead of the vendor's curve (and borrow for SPY).
# - Together these make our forward differ from the vendor's by a few basis points: near the
#   money our call IVs sit on one side of the vendor's and our put IVs on the other (SPX
#   2023-09-14: calls +1.1, puts -0.4 vol point; SPY 2025-06-09: calls -1.0, puts +0.7), the
#   signature of a forward offset rather than of a solver error. A parity-implied forward per
#   expiry would remove most of it.
# - Quote timing: the vendor's IV and greeks are computed at its own snapshot of the
#   underlying (the file's line 2 is after hours: 16:31 to 21:05 ET), while we use the 16:00
#   close. A move of ΔS between the two shifts the IV by about Δ·ΔS / vega.
# - Short expiries (1-7 days) are very sensitive to the day count (calendar vs trading time,
#   16:00 vs 16:15 close) and to the mid of wide quotes.


@dataclass(frozen=True)
class Compared:
    name: str
    iv: np.ndarray  # ours, from the mid
    vendor_iv: np.ndarray
    delta: np.ndarray  # BSM delta at our IV
    vendor_delta: np.ndarray
    abs_delta: np.ndarray
    dte: np.ndarray
    log_kf: np.ndarray
    spread_ratio: np.ndarray


def _ncdf(z: np.ndarray) -> np.ndarray:
    erfc = np.frompyfunc(math.erfc, 1, 1)
    return 0.5 * erfc(-z / math.sqrt(2.0)).astype(np.float64)


def _compare(setup: Setup) -> Compared:
    chain: OptionChain = load_cboe_chain(CHAINS_DIR / setup.file)
    dte = (chain.expiry - chain.snapshot_date).astype(np.int64)
    days = dte - np.where(np.isin(chain.root, AM_SETTLED_ROOTS), AM_SHIFT_DAYS, 0.0)
    t = days / 365.0
    s, r, q = setup.close, setup.rate, setup.div_yield
    iv = implied_vol_from_quotes(chain.bid, chain.ask, chain.is_call, s, chain.strike, t, r, q)
    with np.errstate(invalid="ignore", divide="ignore"):
        fwd = s * np.exp((r - q) * t)
        sd = iv * np.sqrt(t)
        d1 = np.log(fwd / chain.strike) / sd + 0.5 * sd
        call_delta = np.exp(-q * t) * _ncdf(d1)
        delta = np.where(chain.is_call, call_delta, call_delta - np.exp(-q * t))
        mid = 0.5 * (chain.bid + chain.ask)
        spread_ratio = (chain.ask - chain.bid) / mid
        keep = (
            (chain.vendor_iv > 0)
            & (chain.bid > 0)
            & (chain.ask >= chain.bid)
            & np.isfinite(iv)
            & (dte >= 1)
        )
    return Compared(
        name=setup.file.removesuffix("_cboe_delayed.csv"),
        iv=iv[keep],
        vendor_iv=chain.vendor_iv[keep],
        delta=delta[keep],
        vendor_delta=chain.vendor_delta[keep],
        abs_delta=np.abs(delta[keep]),
        dte=dte[keep],
        log_kf=np.log(chain.strike / fwd)[keep],
        spread_ratio=spread_ratio[keep],
    )


def _stats_row(label: str, diff: np.ndarray) -> str:
    if diff.size == 0:
        return f"| {label} | 0 | | | |"
    p10, med, p90 = np.percentile(diff, [10, 50, 90])
    return f"| {label} | {diff.size} | {med:+.2f} | {p10:+.2f} | {p90:+.2f} |"


def report(results: list[Compared]) -> str:
    """Markdown tables of σ̂ - vendor IV in vol points, by |delta| bucket and by DTE."""
    out = []
    for c in results:
        diff = 100.0 * (c.iv - c.vendor_iv)
        out.append(f"#### {c.name}: σ̂ − vendor IV (vol points)\n")
        out.append("| bucket | n | median | p10 | p90 |")
        out.append("|---|---:|---:|---:|---:|")
        for label, lo, hi in MONEYNESS_BUCKETS:
            sel = (c.abs_delta >= lo) & (c.abs_delta < hi)
            out.append(_stats_row(f"{label} (|Δ| {lo:g}–{min(hi, 1):g})", diff[sel]))
        for label, lo, hi in DTE_BUCKETS:
            sel = (c.dte >= lo) & (c.dte <= hi)
            out.append(_stats_row(f"DTE {label}", diff[sel]))
        near = _near(c)
        out.append(_stats_row("near the money*", diff[near]))
        dd = c.delta[near] - c.vendor_delta[near]
        out.append(
            f"\nnear the money*: median |σ̂ − vendor| {np.median(np.abs(diff[near])):.3f} vol "
            f"points, median |Δ − vendor Δ| {np.median(np.abs(dd)):.4f} (n = {near.sum()})\n"
        )
    out.append("\\* |ln K/F| < 0.1, 7–120 days to expiry, (ask − bid)/mid < 20 %.")
    return "\n".join(out)


def _near(c: Compared) -> np.ndarray:
    return (np.abs(c.log_kf) < 0.1) & (c.dte >= 7) & (c.dte <= 120) & (c.spread_ratio < 0.2)


def _require_data() -> None:
    if not CHAINS_DIR.is_dir():
        pytest.skip(
            f"real option chains not found at {CHAINS_DIR}: set V6_DATA to the shared data "
            "folder (../shared/data) to run these tests"
        )


@pytest.mark.parametrize("setup", SETUPS, ids=[s.file[:20] for s in SETUPS])
def test_iv_and_delta_agree_with_vendor_near_the_money(setup: Setup) -> None:
    _require_data()
    c = _compare(setup)
    print("\n" + report([c]))
    near = _near(c)
    assert near.sum() >= 50, "too few near-the-money contracts to compare"
    iv_points = np.median(np.abs(100.0 * (c.iv - c.vendor_iv)[near]))
    assert iv_points <= NEAR_MEDIAN_IV_POINTS
    delta_gap = np.median(np.abs(c.delta[near] - c.vendor_delta[near]))
    assert delta_gap <= NEAR_MEDIAN_DELTA


def test_every_two_sided_quote_inverts_or_is_explained() -> None:
    # NaN exactly where the mid is not quotable under our inputs: at or below the intrinsic
    # value against the discounted forward (deep ITM rows whose mid sits under parity with a
    # flat rate and yield), or at or above the upper bound. Everything else inverts.
    _require_data()
    for setup in SETUPS:
        chain = load_cboe_chain(CHAINS_DIR / setup.file)
        dte = (chain.expiry - chain.snapshot_date).astype(np.int64)
        sel = (chain.vendor_iv > 0) & (chain.bid > 0) & (chain.ask >= chain.bid) & (dte >= 1)
        t = dte[sel] / 365.0
        k, is_call = chain.strike[sel], chain.is_call[sel]
        iv = implied_vol_from_quotes(
            chain.bid[sel],
            chain.ask[sel],
            is_call,
            setup.close,
            k,
            t,
            setup.rate,
            setup.div_yield,
        )
        mid = 0.5 * (chain.bid[sel] + chain.ask[sel])
        spot_pv = setup.close * np.exp(-setup.div_yield * t)
        strike_pv = k * np.exp(-setup.rate * t)
        intrinsic = np.maximum(np.where(is_call, spot_pv - strike_pv, strike_pv - spot_pv), 0)
        bound = np.where(is_call, spot_pv, strike_pv)
        # 1e-9 relative: the kernel's own rounding of the intrinsic value.
        unquotable = (mid <= intrinsic * (1 + 1e-9)) | (mid >= bound)
        clear = (mid >= intrinsic * (1 + 1e-6)) & (mid < bound)
        assert not np.any(iv == 0.0)
        assert np.all(np.isnan(iv[unquotable])), setup.file
        assert np.all(np.isfinite(iv[clear])), setup.file
        # At least 80 %: on 2025-06-09 16 % of the rows are deep ITM calls whose mid is below
        # our intrinsic value, because SPY went ex-dividend (about $1.76) on 2025-06-20, inside
        # every expiry of that file, and a 1.3 % continuous yield only takes off about $0.45.
        assert np.isfinite(iv).mean() > 0.8, setup.file


_MINI = (
    "\n"
    "SPDR S&P 500 ETF Trust,Last: 450.81,Change:  3.85\n"
    '"Date: September 14, 2023 at 4:31 PM EDT",Bid: 450.81,Ask: 450.83,Size: 9*11,"Volume: 7"\n'
    + ",".join(HEADER)
    + "\n"
    "Fri Oct 20 2023,SPY231020C00450000,6.1,0.5,6.05,6.1,100,0.1363,0.5421,0.0323,5000,450.00,"
    "SPY231020P00450000,4.9,-0.5,4.88,4.92,90,0.1321,-0.4584,0.0331,6000\n"
)


def test_loader_reads_the_layout(tmp_path: Path) -> None:
    path = tmp_path / "chain.csv"
    path.write_text(_MINI)
    chain = load_cboe_chain(path)
    assert len(chain) == 2 and chain.snapshot_date == np.datetime64("2023-09-14")
    assert (chain.underlying_last, chain.underlying_bid, chain.underlying_ask) == (
        450.81,
        450.81,
        450.83,
    )
    assert chain.expiry.dtype == np.dtype("datetime64[D]")
    assert list(chain.is_call) == [True, False] and list(chain.root) == ["SPY", "SPY"]
    np.testing.assert_array_equal(chain.vendor_delta, [0.5421, -0.4584])
    np.testing.assert_array_equal(chain.open_interest, [5000, 6000])


@pytest.mark.parametrize(
    ("old", "new", "where"),
    [
        ("Fri Oct 20 2023", "Thu Oct 20 2023", ":5: expiration date"),
        ("Fri Oct 20 2023", "2023-10-20", ":5: expiration date"),
        ("SPY231020P00450000", "SPY231020C00450000", ":5: put symbol"),
        ("SPY231020C00450000", "SPY231021C00450000", ":5: symbol"),
        (",450.00,", ",455.00,", ":5: symbol"),
        (",5000,", ",5000,1,", ":5: expected 22 fields"),
        (",6.05,", ",n/a,", ":5: bid: not a number"),
        ("Date: September 14, 2023", "Date: 14/09/2023", ":3: snapshot date"),
        ("Expiration Date,", "Expiry,", ":4: header does not match"),
    ],
)
def test_loader_names_file_and_line_of_a_malformed_file(
    tmp_path: Path, old: str, new: str, where: str
) -> None:
    path = tmp_path / "bad.csv"
    path.write_text(_MINI.replace(old, new, 1))
    with pytest.raises(ValueError, match=re.escape(f"{path}{where}")):
        load_cboe_chain(path)


if __name__ == "__main__":
    print(report([_compare(s) for s in SETUPS]))
