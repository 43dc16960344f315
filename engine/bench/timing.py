"""Timing for benchmarks: batches sized to a target duration, round-robin rounds, GC paused."""

from __future__ import annotations

import gc
import time
from collections.abc import Callable


def per_call_ns(fn: Callable[[], object], number: int) -> float:
    """Mean ns per call over `number` calls, with the cyclic GC paused (restored after)."""
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        t0 = time.perf_counter_ns()
        for _ in range(number):
            fn()
        return (time.perf_counter_ns() - t0) / number
    finally:
        if gc_was_enabled:
            gc.enable()


def calls_per_batch(fn: Callable[[], object], batch_ns: float) -> int:
    """How many calls take about `batch_ns` (at least one), after one untimed call: a first
    call that loads JIT code from cache would otherwise size every batch at one call."""
    fn()
    number = 1
    while True:
        took = per_call_ns(fn, number) * number
        if took >= batch_ns / 4 or number >= 1_000_000:
            return max(1, round(number * batch_ns / max(took, 1.0)))
        number *= 4


def time_rounds(
    fns: dict[str, Callable[[], object]], rounds: int, batch_ns: float
) -> dict[str, list[float]]:
    """Per-call ns of each function per round: one batch of each per round, round-robin, so
    load from other processes falls on every side alike. One untimed batch warms each up."""
    numbers = {name: calls_per_batch(fn, batch_ns) for name, fn in fns.items()}
    for name, fn in fns.items():
        per_call_ns(fn, numbers[name])
    samples: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(rounds):
        for name, fn in fns.items():
            samples[name].append(per_call_ns(fn, numbers[name]))
    return samples
