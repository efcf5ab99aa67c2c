"""The status page's per-minute history: sampled from the counters, bounded to 48 h."""

from __future__ import annotations

from connectord.state import Store
from connectord.ui.history import KEEP_HOURS, record_sample, series

T0 = 1_800_000_000.0  # a minute boundary far from now; `now` is passed explicitly


def test_points_are_growth_between_consecutive_samples(tmp_path):
    store = Store(tmp_path / "state.db")
    record_sample(store, ["a"], now=T0)
    store.enqueue_many([("a", [b"{}"] * 7)])
    record_sample(store, ["a"], now=T0 + 30)  # same minute: the latest sample wins
    store.enqueue_many([("a", [b"{}"] * 3)])
    record_sample(store, ["a"], now=T0 + 60)
    points = series(store, "a", hours=1, now=T0 + 60)
    assert [(p["in"], p["queue"]) for p in points] == [(7, 7), (3, 10)]
    store.close()


def test_the_first_sample_shows_what_flowed_since_it_at_once(tmp_path):
    store = Store(tmp_path / "state.db")
    store.enqueue_many([("a", [b"{}"] * 4)])  # before the daemon watched: not this minute's
    record_sample(store, ["a"], now=T0)
    store.enqueue_many([("a", [b"{}"] * 5)])
    record_sample(store, ["a"], now=T0 + 10)
    assert [p["in"] for p in series(store, "a", hours=1, now=T0 + 10)] == [5]
    store.close()


def test_rows_older_than_the_window_are_pruned(tmp_path):
    store = Store(tmp_path / "state.db")
    for minute in range(0, KEEP_HOURS * 60 + 120, 60):
        record_sample(store, ["a", "b"], now=T0 + minute * 60)
    kept = store.conn.execute("SELECT count(*) FROM ui_history").fetchone()[0]
    assert kept <= 2 * (KEEP_HOURS * 60 + 1)
    oldest = store.conn.execute("SELECT min(minute) FROM ui_history").fetchone()[0]
    newest = store.conn.execute("SELECT max(minute) FROM ui_history").fetchone()[0]
    assert newest - oldest <= KEEP_HOURS * 60
    store.close()


def test_counters_that_go_down_do_not_make_negative_rates(tmp_path):
    store = Store(tmp_path / "state.db")
    store.conn.execute("INSERT INTO counters (connector, rejected) VALUES ('a', 5)")
    record_sample(store, ["a"], now=T0)
    store.conn.execute("UPDATE counters SET rejected = 0 WHERE connector = 'a'")  # replayed
    record_sample(store, ["a"], now=T0 + 60)
    assert series(store, "a", hours=1, now=T0 + 60)[0]["rejected"] == 0
    store.close()
