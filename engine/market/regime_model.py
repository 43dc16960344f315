"""The synthetic market's parameters: the hidden regime chain, its regimes and the instruments.

A regime says how the market behaves on a session: the drift of SPY, the level its implied
volatility (VIX) is pulled toward, how fast and how noisily, how often it gaps down and where
the SKEW index sits. The chain moves between regimes with fixed daily probabilities, so calm
years, sell-offs, crashes and recoveries follow each other at realistic rates. The simulation
itself is engine/market/generator.py.
"""

from __future__ import annotations

from bisect import bisect_right
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

CALM = "calm"
NORMAL = "normal"
STRESSED = "stressed"
CRASH = "crash"
RECOVERY = "recovery"

SESSIONS_PER_YEAR = 252
# The seed `v6 demo` uses. Its 2007-2019 path has long calm stretches and two crashes
# (2012: SPY -35% with VIX near 80; late 2013), each followed by a recovery.
DEMO_SEED = 6
INDICES = ("VIX", "VIX9D", "VIX3M", "VVIX", "SKEW")


class SyntheticMarketError(ValueError):
    """Bad parameters or dates given to the synthetic market generator."""


@dataclass(frozen=True)
class RegimeSpec:
    """How the market behaves while in one regime (rates are per session unless named yearly).

    `exits` lists the daily probability of leaving for each other regime; the probability of
    staying is what remains, so a regime's mean length is 1 / sum(exits) sessions.
    """

    name: str
    drift_per_year: float  # SPY log drift, e.g. 0.09 = +9%/yr before gaps and dividends
    vix_level: float  # VIX points that the VIX is pulled toward while in this regime
    vix_reversion: float  # fraction of the gap to `vix_level` closed per session (0..1)
    vol_of_vol: float  # standard deviation of the daily change of log(VIX)
    jumps_per_year: float  # expected number of overnight gaps in SPY per year
    jump_mean: float  # mean log size of a gap (negative: gaps are mostly down)
    jump_sd: float  # standard deviation of the log size of a gap
    skew_level: float  # SKEW index points the SKEW is pulled toward
    exits: tuple[tuple[str, float], ...]  # (next regime, daily probability)


DEFAULT_REGIMES: tuple[RegimeSpec, ...] = (
    # Calm: low VIX (11-14), steady gains, rare small gaps, high SKEW (tail hedges are bid
    # when nobody fears the body of the distribution). About 130 sessions per stay.
    RegimeSpec(
        name=CALM,
        drift_per_year=0.2,
        vix_level=12.0,
        vix_reversion=0.08,
        vol_of_vol=0.045,
        jumps_per_year=1.0,
        jump_mean=-0.012,
        jump_sd=0.006,
        skew_level=134.0,
        exits=((NORMAL, 0.0065), (STRESSED, 0.0010)),
    ),
    # Normal: the long-run average market. About 95 sessions per stay.
    RegimeSpec(
        name=NORMAL,
        drift_per_year=0.13,
        vix_level=16.0,
        vix_reversion=0.06,
        vol_of_vol=0.055,
        jumps_per_year=2.5,
        jump_mean=-0.015,
        jump_sd=0.008,
        skew_level=128.0,
        exits=((CALM, 0.0045), (STRESSED, 0.0060)),
    ),
    # Stressed: a correction, VIX in the mid 20s and its curve inverted. About 30 sessions
    # per stay; roughly one stay in four ends in a crash.
    RegimeSpec(
        name=STRESSED,
        drift_per_year=-0.25,
        vix_level=26.0,
        vix_reversion=0.08,
        vol_of_vol=0.07,
        jumps_per_year=6.0,
        jump_mean=-0.02,
        jump_sd=0.010,
        skew_level=123.0,
        exits=((NORMAL, 0.020), (CRASH, 0.009), (RECOVERY, 0.005)),
    ),
    # Crash: about 30 sessions of -0.5%/day plus a gap down every ~14 sessions, VIX pulled
    # toward 45 (and kicked higher by every gap): a 20%+ drawdown on average.
    RegimeSpec(
        name=CRASH,
        drift_per_year=-1.3,
        vix_level=45.0,
        vix_reversion=0.15,
        vol_of_vol=0.08,
        jumps_per_year=18.0,
        jump_mean=-0.03,
        jump_sd=0.015,
        skew_level=121.0,
        exits=((RECOVERY, 0.028), (STRESSED, 0.004)),
    ),
    # Recovery: a strong rebound while the VIX bleeds back down. About 60 sessions per stay.
    RegimeSpec(
        name=RECOVERY,
        drift_per_year=0.55,
        vix_level=21.0,
        vix_reversion=0.05,
        vol_of_vol=0.06,
        jumps_per_year=3.0,
        jump_mean=-0.015,
        jump_sd=0.010,
        skew_level=124.0,
        exits=((NORMAL, 0.012), (CALM, 0.003), (STRESSED, 0.002)),
    ),
)


def check_regimes(regimes: tuple[RegimeSpec, ...], initial: str) -> None:
    """Raise SyntheticMarketError unless the regimes form a valid chain starting at `initial`."""
    names = [r.name for r in regimes]
    if not regimes:
        raise SyntheticMarketError("the regime chain needs at least one regime")
    if len(set(names)) != len(names):
        raise SyntheticMarketError(f"regime names must be unique, got {names}")
    if initial not in names:
        raise SyntheticMarketError(f"initial regime {initial!r} is not one of {names}")
    for r in regimes:
        if not (0.0 <= r.vix_reversion <= 1.0):
            raise SyntheticMarketError(f"regime {r.name!r}: vix_reversion must be in [0, 1]")
        if r.vix_level <= 0 or r.vol_of_vol < 0 or r.jumps_per_year < 0 or r.jump_sd < 0:
            raise SyntheticMarketError(
                f"regime {r.name!r}: vix_level must be > 0 and vol_of_vol, jumps_per_year, "
                "jump_sd >= 0"
            )
        if r.jumps_per_year > SESSIONS_PER_YEAR:
            raise SyntheticMarketError(f"regime {r.name!r}: at most one jump per session")
        total = 0.0
        for target, p in r.exits:
            if target not in names or target == r.name:
                raise SyntheticMarketError(
                    f"regime {r.name!r}: exit to {target!r} must name another regime of {names}"
                )
            if not (0.0 <= p <= 1.0):
                raise SyntheticMarketError(f"regime {r.name!r}: exit probability {p} not in [0, 1]")
            total += p
        if total > 1.0 + 1e-12:
            raise SyntheticMarketError(f"regime {r.name!r}: exit probabilities sum to {total} > 1")


def transition_matrix(regimes: tuple[RegimeSpec, ...]) -> npt.NDArray[np.float64]:
    """Row-stochastic daily transition matrix P[i, j] = P(regime j tomorrow | regime i today)."""
    index = {r.name: i for i, r in enumerate(regimes)}
    matrix = np.zeros((len(regimes), len(regimes)))
    for i, r in enumerate(regimes):
        for target, p in r.exits:
            matrix[i, index[target]] += p
        matrix[i, i] = 1.0 - matrix[i].sum()
    return matrix


def stationary_distribution(regimes: tuple[RegimeSpec, ...]) -> npt.NDArray[np.float64]:
    """Long-run share of sessions spent in each regime (the chain's stationary distribution)."""
    matrix = transition_matrix(regimes)
    # Solve pi (P - I) = 0 with sum(pi) = 1 as one least-squares system.
    n = len(regimes)
    a = np.vstack([(matrix - np.eye(n)).T, np.ones(n)])
    b = np.zeros(n + 1)
    b[-1] = 1.0
    pi, *_ = np.linalg.lstsq(a, b, rcond=None)
    return np.asarray(pi, dtype=np.float64)


def simulate_chain(
    uniforms: npt.NDArray[np.float64], regimes: tuple[RegimeSpec, ...], initial: str
) -> npt.NDArray[np.int64]:
    """Regime index per session: session 0 is `initial`, then one transition per uniform draw.

    `uniforms[t]` (in [0, 1)) decides the move from session t-1 to t; uniforms[0] is unused
    because session 0's regime is given.
    """
    cumulative = [np.cumsum(row).tolist() for row in transition_matrix(regimes)]
    for row in cumulative:
        row[-1] = 1.0  # absorb rounding so every uniform in [0, 1) lands in a column
    state = [r.name for r in regimes].index(initial)
    path = [state] * len(uniforms)
    # A loop over sessions: each step depends on the last, and ~3,300 steps take ~2 ms.
    for t, u in enumerate(uniforms.tolist()[1:], start=1):
        state = bisect_right(cumulative[state], u)
        path[t] = state
    return np.asarray(path, dtype=np.int64)


def regime_column(
    path: npt.NDArray[np.int64], regimes: tuple[RegimeSpec, ...], field: str
) -> npt.NDArray[np.float64]:
    """One RegimeSpec field per session along a regime path, e.g. the daily VIX target."""
    values = np.array([float(getattr(r, field)) for r in regimes])
    return values[path]


@dataclass(frozen=True)
class UnderlyingSpec:
    """An ETF that follows SPY's path, its dividends and the index future quoted on it."""

    symbol: str
    start_price: float  # USD per share: the close before the first session
    beta: float  # log-return beta to SPY (1 for SPY itself)
    idio_vol: float  # annualized vol of its own noise when VIX is 20 (0 for SPY)
    alpha_per_year: float  # log drift on top of beta × SPY
    dividend_yield: float  # cash dividends per year / price, paid quarterly
    ex_date_offset: int  # ex-date: sessions after the third Friday of Mar, Jun, Sep, Dec
    volume: float  # shares per session when VIX is 18
    future: str  # its front-month index future: ES, NQ, RTY
    future_multiple: float  # index points per ETF dollar (SPX ≈ 10 × SPY)
    future_volume: float  # contracts per session when VIX is 18
    future_tick: float  # index points per tick

    def __post_init__(self) -> None:
        if min(self.start_price, self.future_multiple, self.future_tick, self.volume) <= 0:
            raise SyntheticMarketError(
                f"{self.symbol}: prices, multiples, ticks and volumes must be > 0"
            )
        if not (0.0 <= self.dividend_yield < 0.2):
            raise SyntheticMarketError(f"{self.symbol}: dividend_yield must be in [0, 0.2)")
        if self.ex_date_offset < 0 or self.idio_vol < 0:
            raise SyntheticMarketError(f"{self.symbol}: ex_date_offset and idio_vol must be >= 0")


DEFAULT_UNDERLYINGS: tuple[UnderlyingSpec, ...] = (
    UnderlyingSpec("SPY", 140.0, 1.0, 0.0, 0.0, 0.017, 0, 120e6, "ES", 10.0, 1.5e6, 0.25),
    UnderlyingSpec("QQQ", 45.0, 1.15, 0.09, 0.03, 0.008, 1, 50e6, "NQ", 40.0, 0.4e6, 0.25),
    UnderlyingSpec("IWM", 75.0, 1.2, 0.10, -0.01, 0.013, 3, 30e6, "RTY", 10.0, 0.15e6, 0.1),
)


@dataclass(frozen=True)
class GeneratorParams:
    """Everything that shapes the synthetic market besides the seed and the dates."""

    regimes: tuple[RegimeSpec, ...] = DEFAULT_REGIMES  # the regime chain and its behaviour
    initial_regime: str = NORMAL  # regime of the first session
    underlyings: tuple[UnderlyingSpec, ...] = DEFAULT_UNDERLYINGS
    spot_vol_corr: float = -0.72  # correlation of SPY's daily shock with log VIX's shock
    variance_premium: float = 0.75  # SPY's daily vol (annualized) / yesterday's VIX
    vol_jump_beta: float = 5.0  # rise of log VIX per unit of log gap down in SPY
    vix_floor: float = 9.0  # VIX points; the real VIX has never closed below 9
    term_anchor: float = 20.0  # VIX points the VIX term structure pivots around
    vix9d_tilt: float = 0.2  # VIX9D = VIX + tilt × (VIX − anchor): under VIX when calm
    vix3m_tilt: float = 0.25  # VIX3M = VIX + tilt × (anchor − VIX): over VIX when calm
    vvix_base: float = 60.0  # VVIX points with a perfectly steady VIX
    vvix_per_vol_of_vol: float = 0.45  # VVIX points per % of annualized vol of log VIX
    vvix_span: float = 10.0  # sessions; EWMA span of the squared daily log VIX change
    skew_reversion: float = 0.06  # fraction of the gap to the regime's SKEW closed per session
    skew_noise: float = 1.8  # SKEW points per session
    rate: float = 0.02  # continuous financing rate per year, for the futures' carry

    def __post_init__(self) -> None:
        check_regimes(self.regimes, self.initial_regime)
        names = [u.symbol for u in self.underlyings] + [u.future for u in self.underlyings]
        if not names or len(set(names) | set(INDICES)) != len(names) + len(INDICES):
            raise SyntheticMarketError(f"symbols must be unique and not an index's: {names}")
        if not (-1.0 < self.spot_vol_corr < 1.0):
            raise SyntheticMarketError("spot_vol_corr must be in (-1, 1)")
        if not (0.0 <= self.vix9d_tilt < 1.0 and 0.0 <= self.vix3m_tilt < 1.0):
            raise SyntheticMarketError("vix9d_tilt and vix3m_tilt must be in [0, 1)")
        if min(self.variance_premium, self.vix_floor, self.vvix_span) <= 0:
            raise SyntheticMarketError("variance_premium, vix_floor and vvix_span must be > 0")
        if not (0.0 < self.skew_reversion <= 1.0):
            raise SyntheticMarketError("skew_reversion must be in (0, 1]")


DEFAULT_PARAMS = GeneratorParams()
