"""Health signals the breakers read: data age, the day's order rejects, the broker link.

Data age is the longest time any watched symbol (SPY, every underlying held and a futures
hedge) has gone without a fresh quote: a finite, positive price with an uncrossed bid and ask;
a symbol never quoted is stale from the first tick that watched it. A feed that
knows better (a live feed, from its tick times) sets `risk.data_age_seconds` itself, and the
larger of the two counts. Rejects are the broker's (not the risk gate's) since the start of
the New York trading day.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from datetime import date, datetime

from engine.execution.orders import OrderResult
from engine.state.snapshot import BENCHMARK, EXCHANGE_TZ, Snapshot, UnderlyingState


def fresh(u: UnderlyingState | None) -> bool:
    if u is None or u.price is None or not math.isfinite(u.price) or u.price <= 0:
        return False
    return u.bid is None or u.ask is None or u.bid <= u.ask


class Health:
    def __init__(self) -> None:
        self._last_fresh: dict[str, datetime] = {}
        self._day: date | None = None
        self.rejected_today = 0

    def data_age(self, snap: Snapshot, held: Iterable[str]) -> float | None:
        """Seconds since the stalest watched symbol's last fresh quote; None before any."""
        worst: float | None = None
        for symbol in {BENCHMARK, *held}:
            future = snap.market.futures.get(symbol)
            if future is not None:  # a futures hedge: its own quote
                ok = future.price is not None and math.isfinite(future.price) and future.price > 0
            else:
                ok = fresh(snap.underlyings.get(symbol))
            if ok:
                self._last_fresh[symbol] = snap.time
            # Never fresh yet: stale from the first tick that watched it, not unknown forever.
            last = self._last_fresh.setdefault(symbol, snap.time)
            age = (snap.time - last).total_seconds()
            worst = age if worst is None else max(worst, age)
        given = snap.risk.data_age_seconds
        if given is not None:
            worst = given if worst is None else max(worst, given)
        return worst

    def count_rejects(self, time: datetime, results: Iterable[OrderResult]) -> int:
        day = time.astimezone(EXCHANGE_TZ).date()
        if day != self._day:
            self._day, self.rejected_today = day, 0
        self.rejected_today += sum(1 for r in results if r.status == "rejected")
        return self.rejected_today

    def rejects_so_far(self, time: datetime) -> int:
        """Rejects the rules see at `time`: none yet on a new day."""
        return self.rejected_today if time.astimezone(EXCHANGE_TZ).date() == self._day else 0
