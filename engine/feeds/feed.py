"""The feed interface: a source of Snapshots, one per tick, in time order.

Every source of market state implements it — live IB, the replay of a recording
(`engine.feeds.recording.RecordingFeed`), synthetic-from-history (`engine.feeds.history`) and the
embedded synthetic market — so the engine loop (live, dry run, explain) sees only Snapshots and
cannot tell, or behave differently, depending on where they came from.

A feed is structural (a Protocol): a class needs no base class, only the two methods.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Protocol, runtime_checkable

from engine.state.snapshot import Snapshot


@runtime_checkable
class Feed(Protocol):
    """A source of Snapshots.

    `ticks()` yields each tick once, in strictly increasing `time`. A replayed feed (a
    recording, history) is deterministic: two calls give equal sequences. A live feed blocks
    until the next tick and ends when its source disconnects or is stopped. Time comes from
    the snapshots, never from the wall clock, so the loop consuming a feed needs no clock.

    `describe()` is one human-readable line for run reports and journals: the kind of source,
    what it covers (path, symbols, date range) and anything that changes its ticks (seed).
    """

    def ticks(self) -> Iterator[Snapshot]: ...

    def describe(self) -> str: ...
