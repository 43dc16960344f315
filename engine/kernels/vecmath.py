"""Branch-free exp and log that LLVM can vectorize, plus the bit casts and stack buffers they need.

Numba calls libm for `math.exp`/`math.log`, one element at a time, and the llvmlite wheels ship
no vector math library (SVML), so a loop that calls them never vectorizes. These versions are
fdlibm's algorithms (Sun Microsystems, 1993: argument reduction by ln 2, a rational or
polynomial kernel, exponent arithmetic on the bits) written with selects instead of branches,
and inlined into the caller (`inline="always"`), so a loop over them runs 8 lanes wide on
AVX-512. Both are within 1 ulp of the correctly rounded result (fdlibm's bound, re-checked
against `math` by tests/kernels/test_vecmath.py).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, cast

from llvmlite import ir
from numba import njit, types
from numba.extending import intrinsic

# Inlined at Numba IR level: LLVM's inliner leaves Numba-compiled callees out of line, and a call
# inside the loop stops vectorization.
inlined = njit(cache=True, fastmath=False, error_model="numpy", inline="always")


@intrinsic
def _as_bits(typingctx: Any, x: Any) -> Any:
    """The IEEE-754 bits of a float64, as an int64 (a bitcast: no conversion)."""

    def codegen(context: Any, builder: Any, signature: Any, args: Any) -> Any:
        return builder.bitcast(args[0], ir.IntType(64))

    return types.int64(types.float64), codegen


@intrinsic
def _from_bits(typingctx: Any, x: Any) -> Any:
    """The float64 whose IEEE-754 bits are the int64 x."""

    def codegen(context: Any, builder: Any, signature: Any, args: Any) -> Any:
        return builder.bitcast(args[0], ir.DoubleType())

    return types.float64(types.int64), codegen


@intrinsic
def _stack_f64(typingctx: Any, n: Any) -> Any:
    """Pointer to n float64 on the stack of the calling kernel (n a compile-time constant).

    Wrap it with `numba.carray`. LLVM knows stack memory cannot alias the kernel's array
    arguments, so a loop writing there needs no run-time overlap checks — with six outputs and
    seven inputs those checks exceed LLVM's limit and the loop stays scalar.
    """
    if not isinstance(n, types.IntegerLiteral):
        return None
    size = n.literal_value

    def codegen(context: Any, builder: Any, signature: Any, args: Any) -> Any:
        with builder.goto_entry_block():  # one allocation per call, not one per loop turn
            block = builder.alloca(ir.ArrayType(ir.DoubleType(), size))
        return builder.bitcast(block, ir.DoubleType().as_pointer())

    return types.CPointer(types.float64)(n), codegen  # type: ignore[no-untyped-call]


# Typed names for the intrinsics as Numba code calls them (without the typing context).
as_bits = cast(Callable[[float], int], _as_bits)
from_bits = cast(Callable[[int], float], _from_bits)
stack_f64 = cast(Callable[[int], Any], _stack_f64)


LN2_HI = 6.93147180369123816490e-01  # ln 2 split so that k * LN2_HI is exact for |k| < 2^11
LN2_LO = 1.90821492927058770002e-10
INV_LN2 = 1.44269504088896338700e00
SQRT2 = 1.4142135623730951
TWO54 = 18014398509481984.0  # 2^54: lifts a subnormal into the normal range
MIN_NORMAL = 2.2250738585072014e-308
EXP_UNDERFLOW = -745.2  # exp(x) rounds to 0 below about -745.13
EXP_OVERFLOW = 709.79  # and to inf above about 709.78
# fdlibm e_exp.c: remez rational for exp(r) on |r| <= ln2/2
_E1, _E2, _E3 = 1.66666666666666019037e-01, -2.77777777770155933842e-03, 6.61375632143793436117e-05
_E4, _E5 = -1.65339022054652515390e-06, 4.13813679705723846039e-08
# fdlibm e_log.c: remez polynomial for log(1+f) on [sqrt(2)/2 - 1, sqrt(2) - 1]
_L1, _L2, _L3 = 6.666666666666735130e-01, 3.999999999940941908e-01, 2.857142874366239149e-01
_L4, _L5, _L6 = 2.222219843214978396e-01, 1.818357216161805012e-01, 1.531383769920937332e-01
_L7 = 1.479819860511658591e-01


@inlined
def exp_v(x: float) -> float:
    """e^x for any float64 x (NaN in, NaN out; 0 below -745.2, inf above 709.79)."""
    # Clamped (and NaN replaced) so that k stays a small integer for the casts below; the
    # selects at the end restore the special cases.
    xc = min(max(0.0 if math.isnan(x) else x, EXP_UNDERFLOW), EXP_OVERFLOW)
    k = math.floor(xc * INV_LN2 + 0.5)
    hi = xc - k * LN2_HI
    lo = k * LN2_LO
    r = hi - lo
    t = r * r
    c = r - t * (_E1 + t * (_E2 + t * (_E3 + t * (_E4 + t * _E5))))
    y = 1.0 - ((lo - (r * c) / (2.0 - c)) - hi)
    # 2^k in two factors, so results in the subnormal range keep their bits
    ki = int(k)
    k1 = ki >> 1
    y = y * from_bits((k1 + 1023) << 52) * from_bits((ki - k1 + 1023) << 52)
    y = y if x > EXP_UNDERFLOW else 0.0
    y = y if x < EXP_OVERFLOW else math.inf
    return x if math.isnan(x) else y


@inlined
def log_v(x: float) -> float:
    """ln x for a positive, finite float64 x, normal or subnormal (other inputs: undefined)."""
    sub = x < MIN_NORMAL
    bits = as_bits(x * TWO54 if sub else x)
    e = ((bits >> 52) & 0x7FF) - (1023 + 54 if sub else 1023)
    m = from_bits((bits & 0x000FFFFFFFFFFFFF) | 0x3FF0000000000000)  # mantissa in [1, 2)
    big = m > SQRT2  # reduce to [sqrt(2)/2, sqrt(2)) so f below stays small
    f = (0.5 * m if big else m) - 1.0
    de = float(e + 1 if big else e)
    s = f / (2.0 + f)
    z = s * s
    w = z * z
    r = z * (_L1 + w * (_L3 + w * (_L5 + w * _L7))) + w * (_L2 + w * (_L4 + w * _L6))
    hfsq = 0.5 * f * f
    return de * LN2_HI - ((hfsq - (s * (hfsq + r) + de * LN2_LO)) - f)


@inlined
def log_ratio_v(a: float, b: float) -> float:
    """ln(a/b) for positive finite a, b, with relative precision when a is close to b.

    Within a factor 2, a - b is exact (Sterbenz), and log1p((a - b)/b) — computed as
    log(1 + u) corrected for the rounding of 1 + u — keeps the precision that log(a/b) loses
    to its absolute error of one ulp of 1 (which the BSM d1 amplifies by 1/(sigma sqrt T)).
    """
    u = (a - b) / b
    w = 1.0 + u
    near = 0.5 * b <= a <= 2.0 * b
    return log_v(w) - ((w - 1.0) - u) / w if near else log_v(a / b)
