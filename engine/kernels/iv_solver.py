"""Normalised implied volatility after Jäckel's "Let's Be Rational": rational guess, Householder."""

from __future__ import annotations

import math

from numba import njit

from engine.kernels.iv_black import (
    _EPS,
    _black,
    _black_complement,
    _black_parts,
    _black_vega,
    _inv_norm_cdf,
    _vega,
)
from engine.kernels.normal import norm_cdf, norm_pdf

_DBL_MIN = 2.2250738585072014e-308
_DBL_MAX = 1.7976931348623157e308
_SQRT_DBL_MAX = math.sqrt(_DBL_MAX)
_SQRT_3 = math.sqrt(3.0)
_TWO_PI = 2.0 * math.pi
_LOWER_MAP_C = 2.0 * math.pi / math.sqrt(27.0)
_SQRT_2PI = math.sqrt(2.0 * math.pi)
_INV_SQRT_2PI = 1.0 / _SQRT_2PI
_LN_SQRT_2PI = 0.5 * math.log(2.0 * math.pi)
_SQRT_PI_OVER_2 = math.sqrt(0.5 * math.pi)
# Control parameter bounds of the rational cubic: r -> -1 loses positivity of the denominator,
# r -> inf degenerates to linear interpolation.
_R_MIN = -(1.0 - math.sqrt(_EPS))
_R_MAX = 2.0 / (_EPS * _EPS)
# Householder's third-order method converges with order four: once a step is below this
# fraction of s, the error left behind is below eps and another step would not change s.
_STOP = 1e-6
_MAX_ITERATIONS = 12

_OBJ_LOWER = 0  # g(s) = 1/ln b(s) - 1/ln beta       (tiny prices)
_OBJ_MIDDLE = 1  # g(s) = b(s) - beta
_OBJ_UPPER = 2  # g(s) = ln((b_max - beta) / (b_max - b(s)))   (prices near the bound)


@njit(cache=True)
def _rational_cubic(
    x: float, xl: float, xr: float, yl: float, yr: float, dl: float, dr: float, r: float
) -> float:
    """Delbourgo–Gregory rational cubic through (xl, yl), (xr, yr) with slopes dl, dr."""
    h = xr - xl
    if abs(h) <= 0.0:
        return 0.5 * (yl + yr)
    t = (x - xl) / h
    if r >= _R_MAX:
        return yr * t + yl * (1.0 - t)
    omt = 1.0 - t
    t2 = t * t
    omt2 = omt * omt
    num = (
        yr * t2 * t + (r * yr - h * dr) * t2 * omt + (r * yl + h * dl) * t * omt2 + yl * omt2 * omt
    )
    return num / (1.0 + (r - 3.0) * t * omt)


@njit(cache=True)
def _min_control(dl: float, dr: float, slope: float, prefer_shape: bool) -> float:
    """Smallest control parameter that keeps the interpolant monotone and convex/concave."""
    monotonic = dl * slope >= 0.0 and dr * slope >= 0.0
    convex = dl <= slope <= dr
    concave = dl >= slope >= dr
    if not monotonic and not convex and not concave:
        return _R_MIN
    r1 = -_DBL_MAX
    r2 = -_DBL_MAX
    if monotonic:
        if slope != 0.0:
            r1 = (dr + dl) / slope
        elif prefer_shape:
            r1 = _R_MAX
    if convex or concave:
        a = slope - dl
        b = dr - slope
        if a != 0.0 and b != 0.0:
            r2 = max(abs((dr - dl) / b), abs((dr - dl) / a))
        elif prefer_shape:
            r2 = _R_MAX
    elif monotonic and prefer_shape:
        r2 = _R_MAX
    return max(_R_MIN, r1, r2)


@njit(cache=True)
def _fit_control(
    xl: float,
    xr: float,
    yl: float,
    yr: float,
    dl: float,
    dr: float,
    second: float,
    at_left: bool,
    prefer_shape: bool,
) -> float:
    """Control parameter matching the second derivative at one end, kept shape preserving."""
    h = xr - xl
    slope = (yr - yl) / h
    num = 0.5 * h * second + (dr - dl)
    den = (slope - dl) if at_left else (dr - slope)
    if num == 0.0:
        r = 0.0
    elif den == 0.0:
        r = _R_MAX if num > 0.0 else _R_MIN
    else:
        r = num / den
    return max(r, _min_control(dl, dr, slope, prefer_shape))


@njit(cache=True)
def _lower_map(x: float, s: float) -> tuple[float, float, float]:
    """f(s) = 2π|x|/√27 · Φ(-z)^3, z = |x|/(√3 s), with df/dβ and d²f/dβ² (β = b(x, s))."""
    ax = abs(x)
    z = ax / (_SQRT_3 * s)
    y = z * z
    s2 = s * s
    cdf = norm_cdf(-z)
    pdf = norm_pdf(z)
    f = _LOWER_MAP_C * ax * cdf * cdf * cdf
    fp = _TWO_PI * y * cdf * cdf * math.exp(y + 0.125 * s2)
    bracket = 2.0 * z * pdf - cdf * (2.0 + 2.0 * y - 0.25 * s2)
    fpp = _TWO_PI * _SQRT_2PI * (y / s) * cdf * bracket * math.exp(2.5 * y + 0.25 * s2)
    return f, fp, fpp


@njit(cache=True)
def _inverse_lower_map(x: float, f: float) -> float:
    if f < _DBL_MIN:
        return 0.0
    u = (f / (_LOWER_MAP_C * abs(x))) ** (1.0 / 3.0)
    return abs(x / (_SQRT_3 * _inv_norm_cdf(u)))


@njit(cache=True)
def _upper_map(x: float, s: float) -> tuple[float, float, float]:
    """f(s) = Φ(-s/2) with df/dβ and d²f/dβ² (β = b(x, s))."""
    f = norm_cdf(-0.5 * s)
    w = (x / s) ** 2
    fp = -0.5 * math.exp(0.5 * w)
    fpp = _SQRT_PI_OVER_2 * (w / s) * math.exp(w + 0.125 * s * s)
    return f, fp, fpp


@njit(cache=True)
def _householder(newton: float, halley: float, hh3: float) -> float:
    return newton * (1.0 + 0.5 * halley * newton) / (1.0 + newton * (halley + hh3 * newton / 6.0))


@njit(cache=True)
def normalised_implied_vol(beta: float, x: float) -> float:
    """s = σ√T with b(x, s) = beta for an out-of-the-money normalised call: x <= 0,
    0 < beta < exp(x/2). Returns NaN when no such s is representable."""
    ex2 = math.exp(0.5 * x)
    b_max = ex2
    if not (beta >= _DBL_MIN and beta < b_max):
        return math.nan
    # At s_c = sqrt(2|x|) (the inflection point of b in s) h + t = 0, so b and b' are cheap.
    s_c = math.sqrt(abs(2.0 * x))
    b_c = max(0.5 * ex2 - norm_cdf(-s_c) / ex2, 0.0)
    v_c = ex2 * _INV_SQRT_2PI
    s_left = 0.0
    s_right = _DBL_MAX
    objective = _OBJ_MIDDLE
    if beta < b_c:
        s_l = s_c - b_c / v_c
        b_l = _black(x, s_l, ex2)
        if beta < b_l:
            f_l, fp_l, fpp_l = _lower_map(x, s_l)
            f = 0.0
            if -_SQRT_DBL_MAX < fpp_l < _SQRT_DBL_MAX:
                r = _fit_control(0.0, b_l, 0.0, f_l, 1.0, fp_l, fpp_l, False, True)
                f = _rational_cubic(beta, 0.0, b_l, 0.0, f_l, 1.0, fp_l, r)
            if not f > 0.0:
                # Quadratic through f(0) = 0, f'(0) = 1 and f(b_l).
                u = beta / b_l
                f = (f_l * u + b_l * (1.0 - u)) * u
            s = _inverse_lower_map(x, f)
            s_right = s_l
            objective = _OBJ_LOWER
        else:
            v_l = _vega(x, s_l)
            r = _fit_control(b_l, b_c, s_l, s_c, 1.0 / v_l, 1.0 / v_c, 0.0, False, False)
            s = _rational_cubic(beta, b_l, b_c, s_l, s_c, 1.0 / v_l, 1.0 / v_c, r)
            s_left = s_l
            s_right = s_c
    else:
        s_u = s_c + (b_max - b_c) / v_c if v_c > _DBL_MIN else s_c
        b_u = _black(x, s_u, ex2)
        if beta <= b_u:
            v_u = _vega(x, s_u)
            r = _fit_control(b_c, b_u, s_c, s_u, 1.0 / v_c, 1.0 / v_u, 0.0, True, False)
            s = _rational_cubic(beta, b_c, b_u, s_c, s_u, 1.0 / v_c, 1.0 / v_u, r)
            s_left = s_c
            s_right = s_u
        else:
            # Interpolate f against the distance to the bound c = b_max - beta, which keeps
            # its digits as beta -> b_max (f(c=0) = 0 with slope 1/2).
            c_u = _black_complement(x, s_u, ex2)
            c_beta = b_max - beta
            f_u, fp_u, fpp_u = _upper_map(x, s_u)
            f = 0.0
            if -_SQRT_DBL_MAX < fpp_u < _SQRT_DBL_MAX:
                r = _fit_control(0.0, c_u, 0.0, f_u, 0.5, -fp_u, fpp_u, False, True)
                f = _rational_cubic(c_beta, 0.0, c_u, 0.0, f_u, 0.5, -fp_u, r)
            if not f > 0.0:
                u = c_beta / c_u
                f = (f_u * u + 0.5 * c_u * (1.0 - u)) * u
            s = -2.0 * _inv_norm_cdf(max(f, _DBL_MIN))
            s_left = s_u
            if beta > 0.5 * b_max:
                objective = _OBJ_UPPER
    return _refine(beta, x, ex2, s, s_left, s_right, objective)


@njit(cache=True)
def _refine(
    beta: float, x: float, ex2: float, s: float, s_left: float, s_right: float, objective: int
) -> float:
    """Householder (third order) iterations on the branch objective, inside a bracket."""
    ln_beta = math.log(beta)
    c_beta = ex2 - beta
    for _ in range(_MAX_ITERATIONS):
        if not (s_left < s < s_right):
            # The forecast left the bracket: bisect (only seen for absurd |x|).
            s = 0.5 * (s_left + s_right) if s_right < _DBL_MAX else 2.0 * max(s_left, 1.0)
        h = x / s
        halley_b = h * h / s - 0.25 * s  # b''/b'
        hh3_b = halley_b * halley_b - 3.0 * (h / s) ** 2 - 0.25  # b'''/b'
        if objective == _OBJ_LOWER:
            e, m, v = _black_parts(x, s, ex2)
            if not m > 0.0:
                s_left = s
                continue
            ln_b = e + math.log(m)
            # b'/b: outside the plain-formula region (e = 0) b and b' share exp(e), which
            # cancels, so this survives underflow of b.
            bpob = v / m if e == 0.0 else _INV_SQRT_2PI / m
            if ln_b > ln_beta:
                s_right = s
            elif ln_b < ln_beta:
                s_left = s
            newton = (ln_beta - ln_b) * ln_b / ln_beta / bpob
            k = 1.0 + 2.0 / ln_b
            halley = halley_b - bpob * k
            hh3 = (
                hh3_b
                + 2.0 * bpob * bpob * (1.0 + 3.0 / ln_b * (1.0 + 1.0 / ln_b))
                - 3.0 * halley_b * bpob * k
            )
        elif objective == _OBJ_UPPER:
            c = _black_complement(x, s, ex2)
            bp = _vega(x, s)
            if not (c > 0.0 and bp > _DBL_MIN):
                s_right = s
                continue
            if c < c_beta:
                s_right = s
            elif c > c_beta:
                s_left = s
            gp = bp / c
            newton = -math.log(c_beta / c) / gp
            halley = halley_b + gp
            hh3 = hh3_b + gp * (2.0 * gp + 3.0 * halley_b)
        else:
            b, bp = _black_vega(x, s, ex2)
            if b > beta:
                s_right = s
            elif b < beta:
                s_left = s
            if not bp > 0.0:
                continue
            newton = (beta - b) / bp
            halley = halley_b
            hh3 = hh3_b
        ds = max(-0.5 * s, _householder(newton, halley, hh3))
        s += ds
        if abs(ds) <= _STOP * s:
            break
    return s
