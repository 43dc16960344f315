"""Kernel inputs: broadcast, then flat arrays of length n (or 1 for a scalar) with steps 1 or 0."""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt


def flatten(
    arrays: list[npt.NDArray[Any]],
) -> tuple[tuple[int, ...], list[npt.NDArray[Any]], tuple[int, ...]]:
    """Broadcast shape, contiguous 1-D inputs and their steps.

    A scalar stays a length-1 array with step 0, so it is never materialised to length n and
    one compiled kernel signature serves every call. Same-shape arrays are free views when
    already contiguous; partial broadcasts (a strike column against an expiry row) are
    materialised once.
    """
    shape = np.broadcast_shapes(*(a.shape for a in arrays))
    flat: list[npt.NDArray[Any]] = []
    steps: list[int] = []
    for a in arrays:
        if a.size == 1:
            flat.append(np.ascontiguousarray(a.reshape(1)))
            steps.append(0)
        else:
            full = a if a.shape == shape else np.broadcast_to(a, shape)
            flat.append(np.ascontiguousarray(full).reshape(-1))
            steps.append(1)
    return shape, flat, tuple(steps)
