"""The cyclic garbage collector, set up for a long-running daemon.

Why: CPython's collector runs a young collection every 700 net allocations and, now
and then, a full one over every tracked object. A daemon's heap is mostly what startup
built (modules, pydantic models, plugins, the config), which never becomes garbage,
and the rest comes and goes in batches: 500 queued records are decoded, mapped and
sent, and live for the tens of milliseconds their delivery takes. With the default
thresholds those batches are still alive at the young collections, get promoted, and
regularly set off full collections that walk the whole startup heap to free nothing.
Measured in ``bench/segment_pendo.py`` (Segment → Pendo on one core), full collections
ran every 0.8 s and held the interpreter for 30 to 50 ms each, longer than the accept p99
we aim for, plus 3 µs per message of young collections.

So, as CPython's documentation suggests for long-lived processes (`gc.freeze`):

- `tune` raises the young threshold to `YOUNG_THRESHOLD`, so that a batch is gone before
  a collection looks at it: far fewer objects get promoted.
- `settle` runs once the daemon is ready and again after each reload: it collects,
  then freezes what survived, so later full collections skip the startup heap. A reload
  first unfreezes, so that what the old configuration left behind can still be freed.

Reference cycles are still collected, only later; memory held by garbage waiting for a
young collection is bounded by the threshold (tens of thousands of small objects).
"""

from __future__ import annotations

import gc

YOUNG_THRESHOLD = 20_000
"""Net allocations between young collections (CPython's default: 700)."""
OLDER_THRESHOLD = 20
"""Young collections per middle one, and middle ones per full one (default: 10)."""


def tune() -> None:
    gc.set_threshold(YOUNG_THRESHOLD, OLDER_THRESHOLD, OLDER_THRESHOLD)


def settle() -> int:
    """Collect, then freeze the survivors; returns how many objects are frozen."""
    gc.unfreeze()
    gc.collect()
    gc.freeze()
    return gc.get_freeze_count()
