"""Standard normal pdf and cdf as Numba scalar functions, accurate in both tails."""

from __future__ import annotations

import math

from numba import njit

INV_SQRT_2PI = 0.3989422804014327  # 1/sqrt(2*pi), correctly rounded
INV_SQRT_2 = 0.7071067811865476  # 1/sqrt(2), correctly rounded


@njit(cache=True, fastmath=False)
def norm_pdf(x: float) -> float:
    """phi(x) = exp(-x^2/2) / sqrt(2 pi)."""
    return INV_SQRT_2PI * math.exp(-0.5 * x * x)


@njit(cache=True, fastmath=False)
def norm_cdf(x: float) -> float:
    """N(x) = erfc(-x/sqrt 2) / 2.

    The erfc form keeps full relative precision in the lower tail (N(-10) ~ 7.6e-24), where
    0.5 * (1 + erf(x / sqrt 2)) would cancel to 0; the upper tail rounds to 1 as it must.
    """
    return 0.5 * math.erfc(-x * INV_SQRT_2)


# Cephes ndtr/erfc rational approximations (S. L. Moshier, Cephes Math Library 2.9).
# erf(z) = z T(z^2) / U(z^2) for |z| < 1; erfc(z) = exp(-z^2) P(z) / Q(z) for 1 <= z < 8 and
# exp(-z^2) R(z) / S(z) beyond (U, Q, S monic: leading 1 implicit).
_T = (9.60497373987051638749e0, 9.00260197203842689217e1, 2.23200534594684319226e3,
      7.00332514112805075473e3, 5.55923013010394962768e4)  # fmt: skip
_U = (3.35617141647503099647e1, 5.21357949780152679795e2, 4.59432382970980127987e3,
      2.26290000613890934246e4, 4.92673942608635921086e4)  # fmt: skip
_P = (2.46196981473530512524e-10, 5.64189564831068821977e-1, 7.46321056442269912687e0,
      4.86371970985681366614e1, 1.96520832956077098242e2, 5.26445194995477358631e2,
      9.34528527171957607540e2, 1.02755188689515710272e3, 5.57535335369399327526e2)  # fmt: skip
_Q = (1.32281951154744992508e1, 8.67072140885989742329e1, 3.54937778887819891062e2,
      9.75708501743205489753e2, 1.82390916687909736289e3, 2.24633760818710981792e3,
      1.65666309194161350182e3, 5.57535340817727675546e2)  # fmt: skip
_R = (5.64189583547755073984e-1, 1.27536670759978104416e0, 5.01905042251180477414e0,
      6.16021097993053585195e0, 7.40974269950448939160e0, 2.97886665372100240670e0)  # fmt: skip
_S = (2.26052863220117276590e0, 9.39603524938001434673e0, 1.20489539808096656605e1,
      1.70814450747565897222e1, 9.60896809063285878198e0, 3.36907645100081516050e0)  # fmt: skip
SQRT_2PI = 2.5066282746310002  # sqrt(2*pi), correctly rounded


@njit(cache=True, fastmath=False, inline="always")
def _polevl(x: float, coefs: tuple[float, ...]) -> float:
    y = 0.0
    for c in coefs:
        y = y * x + c
    return y


@njit(cache=True, fastmath=False, inline="always")
def _p1evl(x: float, coefs: tuple[float, ...]) -> float:
    y = 1.0
    for c in coefs:
        y = y * x + c
    return y


@njit(cache=True, fastmath=False, error_model="numpy", inline="always")
def norm_cdf_from_pdf(x: float, pdf: float) -> float:
    """N(x), given pdf = phi(x) already computed (or an equally accurate value of it).

    Same tail behaviour as `norm_cdf` (relative precision in the lower tail, N -> 1 above),
    but reuses exp(-x^2/2) instead of calling erfc, which evaluates exponentials of its own:
    the BSM kernel needs phi(d1) anyway and gets phi(d2) from it by the identity
    S e^{-qT} phi(d1) = K e^{-rT} phi(d2), so two cdfs cost one exp instead of two erfc.

    Branch-free: all three Cephes forms are evaluated and one is selected before a single
    division. The sign and size of d are random across a chain, so branches would mispredict,
    and a loop without branches vectorizes (the polynomials are cheap in 8-wide lanes).
    """
    z = x * INV_SQRT_2
    az = abs(z)
    zz = z * z
    central = az < 1.0  # at most 3 bits lost to cancellation for -1 < z < 0
    far = az >= 8.0  # |x| >= 11.3
    # N = 1/2 + erf(z)/2 = 1/2 + z pc / (2 qc) in the centre; erfc(|z|) = exp(-z^2) pt / qt
    num_c = 0.5 * z * _polevl(zz, _T)
    den_c = _p1evl(zz, _U)
    num_t = 0.5 * SQRT_2PI * pdf * (_polevl(az, _R) if far else _polevl(az, _P))
    den_t = _p1evl(az, _S) if far else _p1evl(az, _Q)
    ratio = (num_c if central else num_t) / (den_c if central else den_t)
    tail = 1.0 - ratio if x > 0.0 else ratio
    return 0.5 + ratio if central else tail
