"""Implied-volatility surface driven by the day's volatility indices (VIX9D, VIX, VIX3M, SKEW).

The model, in three steps (docs/market/synthetic_chains.md has the derivation and the fit):

1. ATM term structure. VIX is the 30-day variance-swap level, which includes the skew
   premium, so the at-the-money IV sits below it: atm(T_i) = atm_to_vix * index_i / 100 at
   the index tenors 9, 30 and 93 days (VIX9D, VIX, VIX3M). ATM total variance
   theta(T) = atm(T)^2 T is linear in T between those anchors (calendar-arbitrage free when
   increasing; later anchors are raised if needed). Below 9 days the 9-day ATM vol is held
   flat; beyond 93 days the forward variance relaxes from its 30-93-day value towards
   long_run_vol^2 with time constant relax_years.
2. Smile, per expiry, in standardised moneyness z = ln(K/F) / sqrt(theta(T)) (log-moneyness
   in ATM standard deviations): an SVI slice in z,
     iv(K, T)^2 / atm(T)^2 = 1 + b(T) * (rho z + sqrt(z^2 + width^2) - width),
   ATM-normalised, so iv = atm at z = 0; the put wing (rho < 0) is the steep one; both wings
   are linear in total variance far out (Lee's bound holds). The amplitude
     b(T) = smile_amplitude * (T / 30d)^term_power
            * ((SKEW - 100) / (skew_ref - 100))^skew_elasticity
   grows slowly with maturity (T clipped to [1 day, 1 year]) and with the SKEW index.
3. Missing indices take defaults derived from VIX (`complete`): VIX9D/VIX and VIX3M/VIX and
   SKEW as medians by VIX level over 2011-2019 (VIX9D), 2009-2019 (VIX3M), 2010-2019 (SKEW),
   interpolated linearly in VIX (`DEFAULT_*` tables). VVIX is carried but not used.

The VIX level drives the skew through the ATM scale (the smile's vol-point width is
proportional to atm) and, when SKEW is missing, through its VIX-dependent default (SKEW is
lower in stressed markets, which flattens the smile relative to ATM).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]

DAYS_PER_YEAR = 365.0
T9, T30, T93 = 9.0 / DAYS_PER_YEAR, 30.0 / DAYS_PER_YEAR, 93.0 / DAYS_PER_YEAR  # index tenors
T_MIN_SKEW, T_MAX_SKEW = 1.0 / DAYS_PER_YEAR, 1.0  # clip of T in the amplitude's term factor
MIN_FORWARD_VAR = 1e-4  # (1 vol point)^2 per year: floor of the forward variance
MIN_SMILE_RATIO = 0.25  # iv / atm floor (never reached with the fitted constants)

# Defaults by VIX level: (VIX, value) knots, medians of daily closes in VIX bins (flat beyond
# the ends). Ratios of VIX9D and VIX3M to VIX: contango in calm markets, inversion in stress.
DEFAULT_VIX9D_RATIO = (
    (11.0, 0.878), (13.0, 0.916), (15.4, 0.957), (18.3, 0.998),
    (21.5, 1.029), (29.6, 1.017), (38.6, 1.050),
)  # fmt: skip
DEFAULT_VIX3M_RATIO = (
    (11.0, 1.235), (13.0, 1.171), (15.4, 1.120), (18.3, 1.094),
    (22.0, 1.073), (28.3, 1.020), (38.3, 0.959),
)  # fmt: skip
DEFAULT_SKEW = (
    (11.0, 133.2), (13.0, 126.6), (15.4, 124.6), (18.3, 122.2),
    (21.8, 120.7), (28.4, 121.3), (38.3, 120.0),
)  # fmt: skip


class VolIndexError(ValueError):
    """A volatility index level that is not a positive finite number."""


@dataclass(frozen=True)
class VolIndices:
    """The day's index levels in index points (VIX 16.5 means 16.5 %); None if unknown.

    NaN is read as unknown (None). vix is required.
    """

    vix: float
    vix9d: float | None = None
    vix3m: float | None = None
    vvix: float | None = None
    skew: float | None = None

    def __post_init__(self) -> None:
        for name in ("vix", "vix9d", "vix3m", "vvix", "skew"):
            v = getattr(self, name)
            if v is None:
                continue
            try:
                x = float(v)
            except (TypeError, ValueError):
                raise VolIndexError(f"{name} must be a number, got {v!r}") from None
            if math.isnan(x) and name != "vix":
                object.__setattr__(self, name, None)
                continue
            if not (x > 0 and math.isfinite(x)):
                raise VolIndexError(f"{name} must be a positive finite level, got {v!r}")
            if name == "skew" and x <= 100:
                raise VolIndexError(f"skew is 100 - 10 x skewness and above 100, got {v!r}")
            object.__setattr__(self, name, x)


@dataclass(frozen=True)
class SurfaceParams:
    """Calibration constants of the surface (fitted on the four real chains, see the docs).

    atm_to_vix: ratio, ATM IV / index level at the index tenor.
    smile_amplitude: b at 30 days and SKEW = skew_ref (iv^2/atm^2 per unit of the SVI term).
    smile_rho: SVI correlation, < 0 for a put skew.  smile_width: SVI width, in z units.
    term_power: b grows as (T/30d)^term_power.
    skew_ref: SKEW level of smile_amplitude.  skew_elasticity: b ~ (SKEW-100)^skew_elasticity
      (a prior: SKEW is not available for the calibration days).
    long_run_vol: fraction, forward ATM vol far out.  relax_years: its approach time.
    """

    atm_to_vix: float = 0.780
    smile_amplitude: float = 0.993
    smile_rho: float = -0.383
    smile_width: float = 3.5
    term_power: float = 0.241
    skew_ref: float = 125.0
    skew_elasticity: float = 0.3
    long_run_vol: float = 0.21
    relax_years: float = 0.5


DEFAULT = SurfaceParams()


def _knots(table: tuple[tuple[float, float], ...], vix: float) -> float:
    xs, ys = zip(*table, strict=True)
    return float(np.interp(vix, xs, ys))


def complete(indices: VolIndices) -> VolIndices:
    """The indices with every missing level (except VVIX) filled by its VIX-based default."""
    v = indices.vix
    return replace(
        indices,
        vix9d=indices.vix9d if indices.vix9d is not None else v * _knots(DEFAULT_VIX9D_RATIO, v),
        vix3m=indices.vix3m if indices.vix3m is not None else v * _knots(DEFAULT_VIX3M_RATIO, v),
        skew=indices.skew if indices.skew is not None else _knots(DEFAULT_SKEW, v),
    )


def atm_anchors(indices: VolIndices, params: SurfaceParams = DEFAULT) -> FloatArray:
    """ATM total variances (fraction^2 x years) at 9, 30 and 93 days, made non-decreasing."""
    idx = complete(indices)
    levels = np.array([idx.vix9d, idx.vix, idx.vix3m], dtype=np.float64)
    tenors = np.array([T9, T30, T93])
    w: FloatArray = (params.atm_to_vix * levels / 100.0) ** 2 * tenors
    for i in (1, 2):  # a later anchor below an earlier one would be a calendar arbitrage
        w[i] = max(w[i], w[i - 1] + MIN_FORWARD_VAR * (tenors[i] - tenors[i - 1]))
    return w


def atm_total_variance(
    indices: VolIndices, years: npt.ArrayLike, params: SurfaceParams = DEFAULT
) -> FloatArray:
    """ATM total variance theta(T) (fraction^2 x years); NaN where T <= 0 or not finite."""
    t = np.asarray(years, dtype=np.float64)
    w9, w30, w93 = atm_anchors(indices, params)
    short = w9 / T9 * t  # flat 9-day vol
    middle = np.interp(t, [T9, T30, T93], [w9, w30, w93])
    f93 = (w93 - w30) / (T93 - T30)
    v_inf = params.long_run_vol**2
    tau = params.relax_years
    dt = np.maximum(t - T93, 0.0)
    far = w93 + v_inf * dt + (f93 - v_inf) * tau * -np.expm1(-dt / tau)
    far = np.maximum(far, w93 + MIN_FORWARD_VAR * dt)
    theta = np.where(t <= T9, short, np.where(t <= T93, middle, far))
    with np.errstate(invalid="ignore"):
        return np.asarray(np.where((t > 0) & np.isfinite(t), theta, np.nan), dtype=np.float64)


def smile_amplitude(
    indices: VolIndices, years: npt.ArrayLike, params: SurfaceParams = DEFAULT
) -> FloatArray:
    """The SVI amplitude b(T) of each maturity (dimensionless)."""
    skew = complete(indices).skew or params.skew_ref  # complete() always fills it
    ratio = (skew - 100.0) / (params.skew_ref - 100.0)
    t = np.clip(np.asarray(years, dtype=np.float64), T_MIN_SKEW, T_MAX_SKEW)
    b = params.smile_amplitude * (t / T30) ** params.term_power * ratio**params.skew_elasticity
    return np.asarray(b, dtype=np.float64)


def implied_vols(
    indices: VolIndices,
    log_moneyness: npt.ArrayLike,
    years: npt.ArrayLike,
    params: SurfaceParams = DEFAULT,
) -> FloatArray:
    """Implied volatility (fraction) at log-moneyness ln(K/F) and maturity T (years).

    Inputs broadcast. Finite and positive for every finite ln(K/F) and T > 0; NaN where
    T <= 0 or an input is not finite (as the kernels treat unquotable input).
    """
    k = np.asarray(log_moneyness, dtype=np.float64)
    t = np.asarray(years, dtype=np.float64)
    theta = atm_total_variance(indices, t, params)
    b = smile_amplitude(indices, t, params)
    with np.errstate(invalid="ignore", divide="ignore"):
        z = k / np.sqrt(theta)
        s, rho = params.smile_width, params.smile_rho
        ratio2 = 1.0 + b * (rho * z + np.sqrt(z * z + s * s) - s)
        ratio2 = np.maximum(ratio2, MIN_SMILE_RATIO**2)
        iv = np.sqrt(theta / t * ratio2)
    return np.asarray(np.where(np.isfinite(iv) & np.isfinite(k), iv, np.nan), dtype=np.float64)
