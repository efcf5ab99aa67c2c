"""Hostile records into ``files``: names that collide, escape or are too long, and records
with ever new keys. No published file is ever overwritten, nothing is written outside the
directory, and a record the file system cannot name is the record's fault, not a retry."""

from __future__ import annotations

import csv
import errno
import gzip
import itertools
import time
from pathlib import Path

import orjson
import pytest

from connectord import PermanentError, RetryableError
from connectord.plugins.files import writers
from connectord.plugins.files.destination import MAX_LABEL, FilesDestination, file_error
from connectord.testing import make_context


def track(i: int, event: str, **props) -> dict:
    return {
        "type": "track",
        "event": event,
        "userId": f"u{i}",
        "messageId": f"m-{i}",
        "timestamp": "2024-01-01T10:00:00.000Z",
        "properties": {"n": i, **props},
    }


def read(path: Path) -> list[list[str]]:
    with gzip.open(path, "rt", encoding="utf-8", newline="") as handle:
        return list(csv.reader(handle))


def published(directory: Path) -> list[Path]:
    return sorted(p for p in directory.rglob("*.csv.gz") if not p.name.startswith("."))


def message_ids(files: list[Path]) -> list[str]:
    found = []
    for path in files:
        header, *body = read(path)
        found += [row[header.index("id")] for row in body]
    return sorted(found)


async def send_batches(tmp_path: Path, batches: list[list[dict]], **options) -> Path:
    """Every batch to one destination instance, as a running daemon sends them."""
    out = tmp_path / "out"
    async with make_context("exports", base_dir=tmp_path) as context:
        destination = FilesDestination(
            FilesDestination.Options.model_validate({"directory": "out", **options}), context
        )
        await destination.start()
        try:
            for batch in batches:
                assert await destination.send(batch) is None
        finally:
            await destination.close()
    return out


# --- finding 2: names that collide -------------------------------------------------------------


async def test_names_that_collide_across_batches_never_overwrite_a_file(tmp_path):
    batches = [
        [track(1, "Order Placed")],
        [track(2, "Order-Placed")],
        [track(3, "Order Placed")],
        [track(4, "Order/Placed")],
    ]
    files = published(await send_batches(tmp_path, batches))
    assert len(files) == 4
    assert message_ids(files) == ["m-1", "m-2", "m-3", "m-4"]


async def test_names_that_collide_in_one_batch_share_one_file(tmp_path):
    batch = [track(1, "Order Placed"), track(2, "Order-Placed"), track(3, "Order  Placed")]
    out = await send_batches(tmp_path, [batch])
    (only,) = published(out)
    header, *body = read(only)
    assert sorted(row[header.index("event_text")] for row in body) == [
        "Order  Placed",
        "Order Placed",
        "Order-Placed",
    ]
    assert not [p for p in out.iterdir() if p.name.endswith(writers.TEMP_SUFFIX)]


async def test_a_final_name_already_taken_is_never_reused(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    async with make_context("exports", base_dir=tmp_path) as context:
        destination = FilesDestination(
            FilesDestination.Options.model_validate({"directory": "out"}), context
        )
        await destination.start()
        taken = out / destination._name("Clicked", "20240101", 0)
        taken.write_bytes(b"someone else's file")
        destination.parts[("Clicked", "20240101")] = 0  # as if the counter were stale
        await destination.send([track(1, "Clicked")])
        await destination.close()
    assert taken.read_bytes() == b"someone else's file"
    assert message_ids([p for p in published(out) if p != taken]) == ["m-1"]


def test_publish_refuses_to_replace(tmp_path):
    temp, final = tmp_path / ".a.tmp", tmp_path / "a"
    temp.write_text("new")
    final.write_text("old")
    assert writers.publish(temp, final) is False
    assert final.read_text() == "old" and temp.exists()
    final.unlink()
    assert writers.publish(temp, final) is True
    assert final.read_text() == "new" and not temp.exists()


async def test_a_carriage_return_in_a_value_never_splits_a_csv_row(tmp_path):
    batch = [track(1, "Ln\rN:", note="a\rb"), track(2, "Ln\rN:", note="plain")]
    (only,) = published(await send_batches(tmp_path, [batch]))
    header, *body = read(only)
    assert len(body) == 2 and all(len(row) == len(header) for row in body)
    assert [row[header.index("note")] for row in body] == ["a\rb", "plain"]


async def test_colliding_keys_beyond_the_column_cap_both_stay(tmp_path):
    wide = track(1, "Wide", **{f"p{i}": i for i in range(30)})
    out = await send_batches(
        tmp_path, [[wide], [track(2, "Wide", firstName=1, first_name=2)]], max_columns=20
    )
    last = max(published(out), key=lambda p: int(p.name.split("-")[-2]))
    header, row = read(last)
    assert sorted(orjson.loads(row[header.index("_extra")]).values()) == [1, 2]


async def test_columns_learned_by_a_failed_attempt_are_saved_by_the_retry(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "Clicked").write_text("a file where the stream's folder should be")
    async with make_context("exports", base_dir=tmp_path) as context:
        destination = FilesDestination(
            FilesDestination.Options.model_validate({"directory": "out", "subfolders": True}),
            context,
        )
        await destination.start()
        batch = [track(1, "Clicked", coupon="SAVE5")]
        with pytest.raises(RetryableError):
            await destination.send(batch)
        (out / "Clicked").unlink()
        await destination.send(batch)
        await destination.close()
        saved = await context.state.get_many(["columns:Clicked"])
    assert "coupon" in saved["columns:Clicked"]["columns"]


# --- finding 3 (files): names too long ------------------------------------------------------


async def test_a_300_character_event_name_is_capped_and_stays_distinct(tmp_path):
    long_a, long_b = "E" * 300, "E" * 299 + "F"
    out = await send_batches(tmp_path, [[track(1, long_a), track(2, long_b)]], subfolders=True)
    files = published(out)
    assert len(files) == 2 and len({p.parent for p in files}) == 2
    assert all(len(p.parent.name) <= MAX_LABEL and len(p.name) < 255 for p in files)
    assert message_ids(files) == ["m-1", "m-2"]


def test_a_name_the_file_system_refuses_is_the_records_fault(tmp_path):
    with pytest.raises(OSError) as too_long:
        (tmp_path / ("x" * 300)).write_text("")
    assert too_long.value.errno == errno.ENAMETOOLONG
    assert isinstance(file_error(tmp_path, too_long.value), PermanentError)
    full = OSError(errno.ENOSPC, "No space left on device")
    assert isinstance(file_error(tmp_path, full), RetryableError)
    assert isinstance(file_error(tmp_path, PermissionError(errno.EACCES, "denied")), RetryableError)


# --- finding 5: path escape ---------------------------------------------------------------------


@pytest.mark.parametrize("event", ["..", ".", "../..", "../../etc", "/etc/passwd", ".hidden", ""])
async def test_nothing_is_written_outside_the_directory(tmp_path, event):
    base = tmp_path / "base"
    base.mkdir()
    out = await send_batches(base, [[track(1, event or " ")]], subfolders=True)
    outside = [p for p in tmp_path.rglob("*") if p.is_file() and out not in p.parents]
    assert outside == []
    files = published(out)
    assert message_ids(files) == ["m-1"]
    assert all(p.parent.parent == out and not p.parent.name.startswith(".") for p in files)


# --- finding 6: CSV column explosion ----------------------------------------------------------


async def test_ever_new_keys_are_capped_and_the_header_only_grows_at_the_end(tmp_path):
    batches = [
        [track(b * 20 + i, "Wide", **{f"k{b}_{i}_{j}": j for j in range(100)}) for i in range(20)]
        for b in range(10)
    ]
    started = time.monotonic()
    out = await send_batches(tmp_path, batches, max_columns=200)
    elapsed = time.monotonic() - started
    files = sorted(published(out), key=lambda p: int(p.name.split("-")[-2]))
    assert len(files) == 10
    headers = [read(p)[0] for p in files]
    assert all(len(h) <= 200 for h in headers)
    for before, after in itertools.pairwise(headers):
        assert after[: len(before)] == before  # new columns only appended
    kept = 0
    for path in files:
        header, *body = read(path)
        for row in body:
            cells = dict(zip(header, row, strict=True))
            extra = orjson.loads(cells.pop("_extra") or "{}")
            kept += sum(1 for c in cells if c.startswith("k") and cells[c] != "") + len(extra)
    assert kept == 200 * 100  # every value, in its column or in _extra
    assert elapsed < 20, elapsed
