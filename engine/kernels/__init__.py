"""Quant kernels: BSM Greeks, implied volatility, skew and volatility features, on arrays.

Units: T in years, rates and dividend yields continuous (r = 0.05 is 5%), volatilities as
fractions (0.20 is 20 vol). `bsm_greeks` returns vega per 1.00 vol, theta per year and rho
per 1.00 of rate; divide vega by 100 for per vol point and theta by 365 for per calendar day.
Unquotable input gives NaN for that element, never 0 and never an exception.
"""

from engine.kernels.bsm import Greeks, bsm_greeks, bsm_price
from engine.kernels.features import (
    ChainFeatures,
    ExpiryFeatures,
    beta_weighted_delta,
    chain_features,
    expiry_features,
    interp_maturity,
    iv_rank_percentile,
    log_returns,
    realized_vol_close,
    realized_vol_parkinson,
    rolling_beta,
    rolling_beta_correlation,
    rolling_correlation,
)
from engine.kernels.iv import implied_vol, implied_vol_from_quotes

__all__ = [
    "ChainFeatures",
    "ExpiryFeatures",
    "Greeks",
    "beta_weighted_delta",
    "bsm_greeks",
    "bsm_price",
    "chain_features",
    "expiry_features",
    "implied_vol",
    "implied_vol_from_quotes",
    "interp_maturity",
    "iv_rank_percentile",
    "log_returns",
    "realized_vol_close",
    "realized_vol_parkinson",
    "rolling_beta",
    "rolling_beta_correlation",
    "rolling_correlation",
]
