"""The ``files`` destination: names, contents, schemas and atomic publication."""

from __future__ import annotations

import csv
import gzip
import io
import re
import time
from pathlib import Path

import orjson
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from connectord.plugins.files.destination import FilesDestination, file_label
from connectord.testing import deliver, make_context, write_config
from tests.plugins.clevertap.common import source_options, toml_inline
from tests.plugins.clevertap.emulator import EVENT_NAMES, CleverTapEmulator, Dataset
from tests.plugins.files.interrupted import sync_killed_and_rerun

NAME = re.compile(
    r"^(?P<export>\d+)-(?P<run>\d{10})-(?P<stream>.+)-(?P<day>\d{8})-(?P<part>\d+)-(?P<db>\d+)"
    r"\.(?P<ext>csv\.gz|json\.gz|csv|json|parquet)$"
)


def track(i: int, event: str = "Order Placed", day: str = "2024-01-01", **props) -> dict:
    return {
        "type": "track",
        "event": event,
        "userId": f"u{i}",
        "anonymousId": f"__obj{i}",
        "messageId": f"m-{event}-{day}-{i}",
        "timestamp": f"{day}T10:00:{i % 60:02d}.000Z",
        "properties": {"amount": i, **props},
        "context": {"session_source": "Direct"},
    }


def read_csv_gz(path: Path) -> list[list[str]]:
    with gzip.open(path, "rt", encoding="utf-8", newline="") as handle:
        return list(csv.reader(handle))


def final_files(directory: Path) -> list[Path]:
    return sorted(p for p in directory.rglob("*") if p.is_file() and NAME.match(p.name))


async def send(directory: Path, batches: list[list[dict]], **options) -> list[Path]:
    async with make_context("exports", base_dir=directory.parent) as context:
        for batch in batches:
            await deliver(
                FilesDestination,
                {"directory": directory.name, "export_id": 1663664837, **options},
                batch,
                context=context,
            )
    return final_files(directory)


def test_stream_names_are_written_like_clevertap():
    assert file_label("Order Placed") == "Order-Placed"
    assert file_label("App Launched / v2") == "App-Launched-v2"
    assert file_label("  ") == "unnamed"


async def test_gzip_csv_names_header_and_columns_added_later(tmp_path):
    out = tmp_path / "exports"
    first = [track(i) for i in range(3)] + [track(0, "App Launched", "2024-01-02")]
    second = [track(i, coupon="SAVE5") for i in range(3, 5)]
    started = int(time.time())
    files = await send(out, [first, second])
    names = [NAME.match(p.name).groupdict() for p in files]
    assert [(n["stream"], n["day"], n["part"], n["ext"]) for n in names] == [
        ("App-Launched", "20240102", "0", "csv.gz"),
        ("Order-Placed", "20240101", "0", "csv.gz"),
        ("Order-Placed", "20240101", "1", "csv.gz"),
    ]
    assert {n["export"] for n in names} == {"1663664837"}
    assert {n["db"] for n in names} == {"0"}
    assert all(abs(int(n["run"]) - started) < 60 for n in names)
    assert all(p.stat().st_mode & 0o777 == 0o640 for p in files)

    part0, part1 = read_csv_gz(files[1]), read_csv_gz(files[2])
    assert part0[0][:4] == ["id", "user_id", "anonymous_id", "timestamp"]
    assert part0[0][-1] == "amount" and "coupon" not in part0[0]
    assert part1[0][: len(part0[0])] == part0[0]  # a later part only appends columns
    assert part1[0][-1] == "coupon"
    rows = [dict(zip(part1[0], row, strict=True)) for row in part1[1:]]
    assert [(r["id"], r["amount"], r["coupon"]) for r in rows] == [
        ("m-Order Placed-2024-01-01-3", "3", "SAVE5"),
        ("m-Order Placed-2024-01-01-4", "4", "SAVE5"),
    ]
    assert rows[0]["timestamp"] == "2024-01-01T10:00:03Z"
    assert rows[0]["context_session_source"] == "Direct"
    assert not [p for p in out.iterdir() if p.name.startswith(".")]


async def test_json_lines(tmp_path):
    files = await send(tmp_path / "exports", [[track(1, note="a,b")]], format="jsonl")
    [path] = files
    assert path.name.endswith("-Order-Placed-20240101-0-0.json.gz")
    [line] = gzip.decompress(path.read_bytes()).splitlines()
    row = orjson.loads(line)
    assert row["id"] == "m-Order Placed-2024-01-01-1" and row["note"] == "a,b"


async def test_parquet_schema(tmp_path):
    records = [track(i, price=1.5 + i, paid=True) for i in range(4)]
    records.append(
        {"type": "identify", "userId": "u1", "messageId": "p1", "traits": {"plan": "pro"}}
    )
    files = await send(tmp_path / "exports", [records], format="parquet")
    events = next(p for p in files if "-Order-Placed-" in p.name)
    profiles = next(p for p in files if "-Profiles-" in p.name)
    assert events.name.endswith("-0-0.parquet")
    table = pq.read_table(events)
    schema = {field.name: field.type for field in table.schema}
    assert schema["id"] == pa.string()
    assert schema["timestamp"] == pa.timestamp("ms", tz="UTC")
    assert schema["amount"] == pa.int64()
    assert schema["price"] == pa.float64()
    assert schema["paid"] == pa.bool_()
    assert table.num_rows == 4
    assert table.column("amount").to_pylist() == [0, 1, 2, 3]
    assert pq.read_table(profiles).column("plan").to_pylist() == ["pro"]


async def test_subfolders_per_stream_and_uncompressed_csv(tmp_path):
    files = await send(
        tmp_path / "exports", [[track(1), track(2, "Charged")]], subfolders=True, compression="none"
    )
    assert sorted(p.parent.name for p in files) == ["Charged", "Order-Placed"]
    assert all(p.name.endswith(".csv") for p in files)
    assert files[0].read_text().startswith("id,")


async def test_temporary_files_left_by_a_crash_are_removed_on_start(tmp_path):
    out = tmp_path / "exports"
    out.mkdir()
    stale = out / ".1663664837-1-Order-Placed-20240101-0-0.csv.gz.tmp"
    stale.write_bytes(b"half a file")
    await send(out, [[track(1)]])
    assert not stale.exists()


async def test_check_proves_the_directory_is_writable(tmp_path):
    async with make_context("exports", base_dir=tmp_path) as context:
        destination = FilesDestination(
            FilesDestination.Options.model_validate({"directory": "out"}), context
        )
        assert "can write files" in await destination.check()
    assert list((tmp_path / "out").iterdir()) == []


def complete(path: Path) -> bool:
    """Read a whole file the way a loader would; False if it is cut short."""
    try:
        if path.name.endswith(".gz"):
            data = gzip.decompress(path.read_bytes())
            rows = list(csv.reader(io.StringIO(data.decode())))
            return len(rows) >= 2 and len(rows[0]) > 3
        return pq.read_table(path).num_rows > 0
    except Exception:
        return False


@pytest.mark.e2e
@pytest.mark.slow
@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_a_partial_file_never_appears_under_its_final_name(tmp_path, emulator_server, fmt):
    """``connectord sync`` into files, watched while it writes, then killed -9 and run
    again: every file that ever has a final name is complete, and every event is in one."""
    data = Dataset(days=2, events_per_day=20_000, users=500)
    emulator = CleverTapEmulator(data)
    server = emulator_server(emulator)
    source = source_options(emulator, server.url, events=list(EVENT_NAMES), batch_size=5000)
    config = write_config(
        tmp_path,
        f"""
[connectors.clevertap_files]
schedule = "manual"
source = {{ type = "clevertap.events", {toml_inline(source)[2:-2]} }}
destination = {{ type = "files", directory = "export", format = "{fmt}" }}
""",
    )
    out = tmp_path / "export"
    run = sync_killed_and_rerun(
        config,
        "clevertap_files",
        outputs=lambda: final_files(out) if out.exists() else [],
        whole=complete,
    )
    seen = run.seen
    files = final_files(out)
    assert seen and all(seen.values()), [p.name for p, ok in seen.items() if not ok]
    assert all(complete(p) for p in files)
    assert not [p for p in out.iterdir() if p.name.endswith(".tmp")]
    ids: set[str] = set()
    for path in files:
        if fmt == "csv":
            rows = read_csv_gz(path)
            ids.update(row[0] for row in rows[1:])
        else:
            ids.update(pq.read_table(path, columns=["id"]).column("id").to_pylist())
    assert len(ids) == data.total()  # at least once: a re-read page may repeat in a new file
