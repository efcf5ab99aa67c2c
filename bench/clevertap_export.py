"""Benchmark: export 1,000,000 CleverTap events into SQLite and DuckDB — connectord vs dlt.

Not part of ``make test``. Run it on an otherwise idle machine (it uses both cores
for a few minutes):

    python3 -m venv bench/.venv
    bench/.venv/bin/pip install -e . -r bench/requirements.txt
    bench/.venv/bin/python bench/clevertap_export.py            # 5 days x 200,000 events

Options: ``--events-per-day N --days D`` (default 200000 x 5),
``--only connectord|connectord-duckdb|connectord-s3|dlt`` (default: all four),
``--dlt-nesting N`` (dlt's ``max_table_nesting``; default: dlt's own default),
``--json FILE`` (write the figures).

What it measures:

1. The CleverTap emulator (``tests/plugins/clevertap/emulator.py``) runs in its own process
   with every page pre-rendered, so serving a page costs it almost nothing. Both tools
   send the same queries: one ``POST /1/events.json`` per event name and day
   (``batch_size=5000&app=true&events=false&profile=false``), then the cursor pages.
2. connectord: ``connectord sync`` (a real process) with the ``clevertap.events`` source
   and the ``warehouse`` destination on a SQLite file (``tracks_table = false``: one
   table per event, as dlt writes). Rows are upserted on ``id``.
   connectord-duckdb: the same, with the ``warehouse`` destination on a DuckDB file
   (``duckdb:///connectord.duckdb``; typed columns, one upsert statement per table and
   column set, the file released when batches pause).
   connectord-s3: the same source into the ``files`` destination writing gzip CSV
   objects, named for BigQuery's wildcard load, into an S3 bucket served by moto's
   server on 127.0.0.1 (one create-only PUT per part, as against AWS).
3. dlt: its REST API source (``rest_api_source``, a cursor paginator for CleverTap's
   ``next_cursor``) and its ``sqlalchemy`` destination on a SQLite file — the same kind
   of store — in a child process. ``write_disposition = "append"`` (dlt's default; no
   de-duplication, i.e. less work than connectord's upserts), one load worker (SQLite
   allows one writer; dlt's default of parallel load jobs fails with "database is
   locked"). dlt's default normalisation also writes lists (``items``,
   ``all_identities``) as child tables.
4. For each: wall time from process start to exit, rows/s = events / wall time, peak
   RSS = the process's ``ru_maxrss`` from ``wait4`` (= its VmHWM), cross-checked with
   VmHWM polled from ``/proc`` (including any child processes). Both stores are checked
   to hold every event before figures are printed.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import gzip
import io
import json
import os
import re
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
EVENT_NAMES = ("App Launched", "Product Viewed", "Added To Cart", "Charged")
ACCOUNT, PASSCODE = "TEST-RK4-W75-ZZ6Z", "SKY-ABC-DEFG"
BATCH = 5000


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def day_keys(days: int) -> list[str]:
    from datetime import date, timedelta

    return [(date(2024, 1, 1) + timedelta(days=n)).strftime("%Y%m%d") for n in range(days)]


# --- measuring a child process ------------------------------------------------------------


def vmhwm_kib(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def descendants(pid: int) -> set[int]:
    parents: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as stat:
                    parents[int(entry)] = int(stat.read().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
    found, frontier = set(), {pid}
    while frontier:
        frontier = {child for child, parent in parents.items() if parent in frontier} - found
        found |= frontier
    return found


def measure(command: list[str], *, cwd: Path, env: dict[str, str] | None = None) -> dict:
    """Run ``command``; wall time, peak RSS (wait4) and polled VmHWM of it and children."""
    started = time.perf_counter()
    process = subprocess.Popen(
        command, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    peaks = {"self": 0, "children": 0}
    done = threading.Event()

    def poll() -> None:
        while not done.is_set():
            peaks["self"] = max(peaks["self"], vmhwm_kib(process.pid))
            for child in descendants(process.pid):
                peaks["children"] = max(peaks["children"], vmhwm_kib(child))
            done.wait(0.2)

    poller = threading.Thread(target=poll, daemon=True)
    poller.start()
    output = process.stdout.read().decode(errors="replace") if process.stdout else ""
    _, status, usage = os.wait4(process.pid, 0)
    seconds = time.perf_counter() - started
    done.set()
    poller.join()
    process.returncode = os.waitstatus_to_exitcode(status)
    return {
        "seconds": seconds,
        "exit": process.returncode,
        "peak_rss_mib": usage.ru_maxrss / 1024,
        "vmhwm_polled_mib": peaks["self"] / 1024,
        "child_vmhwm_mib": peaks["children"] / 1024,
        "cpu_seconds": usage.ru_utime + usage.ru_stime,
        "output_tail": output[-3000:],
    }


# --- the emulator ---------------------------------------------------------------------------


def start_emulator(port: int, events_per_day: int, days: int) -> subprocess.Popen:
    command = [
        sys.executable, "-m", "tests.plugins.clevertap.emulator", "--port", str(port),
        "--events-per-day", str(events_per_day), "--days", str(days), "--users", "20000",
        "--prerender", str(BATCH),
    ]  # fmt: skip
    process = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, text=True)
    assert process.stdout is not None
    line = process.stdout.readline()
    if "prerendered" not in line:
        process.kill()
        raise RuntimeError(f"emulator did not start: {line}")
    for _ in range(600):
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/1/none", timeout=1)
        except urllib.error.HTTPError:
            return process
        except OSError:
            time.sleep(0.1)
    raise RuntimeError("emulator not reachable")


# --- connectord -----------------------------------------------------------------------------


S3_BUCKET = "bench"
S3_KEYS = {"access_key_id": "testing", "secret_access_key": "testing"}


def destination_for(store: str, s3_endpoint: str | None) -> str:
    if store == "s3":
        return (
            f'{{ type = "files", url = "s3://{S3_BUCKET}/clevertap", format = "csv", '
            f'endpoint_url = "{s3_endpoint}", region = "us-east-1", '
            f'access_key_id = "{S3_KEYS["access_key_id"]}", '
            f'secret_access_key = "{S3_KEYS["secret_access_key"]}" }}'
        )
    target = "sqlite:///connectord.db" if store == "sqlite" else "duckdb:///connectord.duckdb"
    return f'{{ type = "warehouse", url = "{target}", tracks_table = false }}'


def run_connectord(
    url: str, days: list[str], work: Path, store: str = "sqlite", s3_endpoint: str | None = None
) -> dict:
    """``connectord sync`` into a SQLite file, a DuckDB file, or gzip CSV objects in an S3
    bucket (moto's server, ``store="s3"``)."""
    work.mkdir(parents=True, exist_ok=True)
    events = json.dumps(list(EVENT_NAMES))
    (work / "connectors.toml").write_text(
        f"""
[daemon]
state = "state.db"
listen = "127.0.0.1:{free_port()}"
log_format = "json"

[connectors.bench]
schedule = "manual"
destination = {destination_for(store, s3_endpoint)}

[connectors.bench.source]
type = "clevertap.events"
account_id = "{ACCOUNT}"
passcode = "{PASSCODE}"
base_url = "{url}"
start = "{days[0]}"
end = "{days[-1]}"
events = {events}
batch_size = {BATCH}
"""
    )
    command = [
        sys.executable,
        "-m",
        "connectord",
        "sync",
        "bench",
        "-c",
        str(work / "connectors.toml"),
    ]
    result = measure(command, cwd=work)
    if store == "s3":
        result["rows"] = s3_rows(s3_endpoint)
    elif store == "sqlite":
        result["rows"] = sqlite_rows(work / "connectord.db")
    else:
        result["rows"] = duckdb_rows(work / "connectord.duckdb")
    result["events"] = sum(result["rows"].values())
    return result


def sqlite_rows(path: Path) -> dict[str, int]:
    with sqlite3.connect(path) as db:
        tables = [r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")]
        return {t: db.execute(f'SELECT count(*) FROM "{t}"').fetchone()[0] for t in tables}


def duckdb_rows(path: Path) -> dict[str, int]:
    import duckdb

    if not path.exists():
        return {}
    with duckdb.connect(str(path), read_only=True) as db:
        found = db.execute("SELECT table_name FROM information_schema.tables").fetchall()
        tables = [r[0] for r in found if not r[0].startswith("_")]  # not _discards
        return {t: db.execute(f'SELECT count(*) FROM "{t}"').fetchone()[0] for t in tables}


def s3_client(endpoint: str):
    import boto3

    return boto3.client(
        "s3",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id=S3_KEYS["access_key_id"],
        aws_secret_access_key=S3_KEYS["secret_access_key"],
    )


def s3_rows(endpoint: str) -> dict[str, int]:
    """Data rows across the bucket's gzip CSV objects (each object's header not counted)."""
    client = s3_client(endpoint)
    rows = 0
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=S3_BUCKET):
        for item in page.get("Contents", []):
            body = client.get_object(Bucket=S3_BUCKET, Key=item["Key"])["Body"].read()
            lines = csv.reader(io.StringIO(gzip.decompress(body).decode()))
            rows += sum(1 for _ in lines) - 1
    return {"objects": rows}


@contextlib.contextmanager
def s3_store():
    """moto's S3 server on a free port on 127.0.0.1, with the bench bucket."""
    import logging

    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # no line per request
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=free_port(), verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    try:
        s3_client(endpoint).create_bucket(Bucket=S3_BUCKET)
        yield endpoint
    finally:
        server.stop()


# --- dlt ------------------------------------------------------------------------------------


def run_dlt(url: str, days: list[str], work: Path, nesting: int | None) -> dict:
    work.mkdir(parents=True, exist_ok=True)
    command = [sys.executable, __file__, "--dlt-worker", url, str(work), ",".join(days)]
    if nesting is not None:
        command += ["--dlt-nesting", str(nesting)]
    env = {
        **os.environ,
        "DLT_DATA_DIR": str(work / "dlt-data"),
        "RUNTIME__LOG_LEVEL": "WARNING",
        # SQLite takes one writer at a time: dlt's parallel load jobs fail with "database
        # is locked" (seen with the default of 20 workers), so load with one.
        "LOAD__WORKERS": "1",
    }
    result = measure(command, cwd=work, env=env)
    match = re.search(r"^ROWS (\{.*\})$", result["output_tail"], re.MULTILINE)
    result["rows"] = json.loads(match.group(1)) if match else {}
    result["events"] = sum(v for k, v in result["rows"].items() if "__" not in k)
    return result


def dlt_worker(url: str, work: str, days: str, nesting: int | None) -> None:
    """Runs in the measured child process: dlt's REST API source into SQLite."""
    import dlt
    from dlt.sources.helpers.rest_client.paginators import BasePaginator
    from dlt.sources.rest_api import rest_api_source

    class CleverTapCursor(BasePaginator):
        """CleverTap's cursor: ``cursor`` after the query, then ``next_cursor``."""

        def __init__(self) -> None:
            super().__init__()
            self.cursor = None

        def update_state(self, response, data=None) -> None:
            body = response.json()
            self.cursor = body.get("next_cursor") or body.get("cursor")
            if not self.cursor:
                self._has_next_page = False

        def update_request(self, request) -> None:
            request.params = {**(request.params or {}), "cursor": self.cursor}

    resources = []
    for day in days.split(","):
        for event in EVENT_NAMES:
            table = event.lower().replace(" ", "_")
            resources.append(
                {
                    "name": f"{table}_{day}",
                    "table_name": table,
                    "endpoint": {
                        "path": "events.json",
                        "method": "POST",
                        "params": {
                            "batch_size": BATCH,
                            "app": "true",
                            "events": "false",
                            "profile": "false",
                        },
                        "json": {"event_name": event, "from": int(day), "to": int(day)},
                        "data_selector": "records",
                        "paginator": CleverTapCursor(),
                    },
                }
            )
    source = rest_api_source(
        {
            "client": {
                "base_url": f"{url}/1/",
                "headers": {"X-CleverTap-Account-Id": ACCOUNT, "X-CleverTap-Passcode": PASSCODE},
            },
            "resource_defaults": {"write_disposition": "append"},
            "resources": resources,
        }
    )
    if nesting is not None:
        source.max_table_nesting = nesting
    pipeline = dlt.pipeline(
        pipeline_name="clevertap_bench",
        pipelines_dir=str(Path(work) / "pipelines"),
        destination=dlt.destinations.sqlalchemy(credentials=f"sqlite:///{work}/dlt.db"),
        dataset_name="main",
    )
    pipeline.run(source)
    rows = {}
    with pipeline.sql_client() as client:
        for table in pipeline.default_schema.data_table_names():
            rows[table] = client.execute_sql(
                f"SELECT count(*) FROM {client.make_qualified_table_name(table)}"
            )[0][0]
    print("ROWS " + json.dumps(rows), flush=True)


# --- main -----------------------------------------------------------------------------------


def report(name: str, result: dict, expected: int) -> None:
    rate = result["events"] / result["seconds"]
    print(
        f"{name:17s} {result['events']:>9,} events in {result['seconds']:7.1f} s = "
        f"{rate:>8,.0f} rows/s | peak RSS {result['peak_rss_mib']:7.1f} MiB "
        f"(VmHWM polled {result['vmhwm_polled_mib']:.1f}, "
        f"children {result['child_vmhwm_mib']:.1f}) "
        f"| CPU {result['cpu_seconds']:.1f} s | exit {result['exit']}"
    )
    if result["events"] != expected or result["exit"] != 0:
        print(f"  !! expected {expected:,} events and exit 0:\n{result['output_tail']}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events-per-day", type=int, default=200_000)
    parser.add_argument("--days", type=int, default=5)
    parser.add_argument(
        "--only", choices=("connectord", "connectord-duckdb", "connectord-s3", "dlt")
    )
    parser.add_argument("--dlt-nesting", type=int)
    parser.add_argument("--json", type=Path)
    parser.add_argument(
        "--dlt-worker", nargs=3, metavar=("URL", "WORK", "DAYS"), help=argparse.SUPPRESS
    )
    args = parser.parse_args()
    if args.dlt_worker:
        dlt_worker(*args.dlt_worker, args.dlt_nesting)
        return

    sys.path.insert(0, str(ROOT))
    from tests.plugins.clevertap.emulator import Dataset

    expected = Dataset(events_per_day=args.events_per_day, days=args.days, users=20000).total()
    days = day_keys(args.days)
    port = free_port()
    print(
        f"emulator: {expected:,} events over {args.days} days, pre-rendering pages ...", flush=True
    )
    emulator = start_emulator(port, args.events_per_day, args.days)
    url = f"http://127.0.0.1:{port}"
    results: dict[str, dict] = {}
    try:
        with tempfile.TemporaryDirectory(prefix="ct-bench-") as work:
            if args.only in (None, "connectord"):
                results["connectord"] = run_connectord(url, days, Path(work) / "connectord")
                report("connectord", results["connectord"], expected)
            if args.only in (None, "connectord-duckdb"):
                results["connectord-duckdb"] = run_connectord(
                    url, days, Path(work) / "connectord-duckdb", store="duckdb"
                )
                report("connectord-duckdb", results["connectord-duckdb"], expected)
            if args.only in (None, "connectord-s3"):
                with s3_store() as endpoint:
                    results["connectord-s3"] = run_connectord(
                        url, days, Path(work) / "connectord-s3", store="s3", s3_endpoint=endpoint
                    )
                report("connectord-s3", results["connectord-s3"], expected)
            if args.only in (None, "dlt"):
                results["dlt"] = run_dlt(url, days, Path(work) / "dlt", args.dlt_nesting)
                report("dlt", results["dlt"], expected)
    finally:
        emulator.send_signal(signal.SIGTERM)
        emulator.wait(30)
    theirs = results.get("dlt")
    for name in ("connectord", "connectord-duckdb", "connectord-s3"):
        ours = results.get(name)
        if ours and theirs and ours["events"] == theirs["events"] == expected:
            speed = (ours["events"] / ours["seconds"]) / (theirs["events"] / theirs["seconds"])
            memory = ours["peak_rss_mib"] / theirs["peak_rss_mib"]
            print(f"throughput {name}/dlt = {speed:.2f}x   peak RSS {name}/dlt = {memory:.2f}x")
    if args.json:
        for result in results.values():
            result.pop("output_tail", None)
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
