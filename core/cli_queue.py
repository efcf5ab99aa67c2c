"""``connectord dlq list|replay|purge NAME`` and ``connectord queue list|drop NAME``.

Both act on records the state keeps (dead letters; records accepted and not yet
delivered), through the `StateBackend`, so they work on an SQLite file and on a
PostgreSQL state alike, and while daemons run.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import click

from .backends import StateBackend, connector_lease
from .cli_text import plural
from .config import Config
from .errors import StateError

T = TypeVar("T")
NAME = click.argument("name")
LIMIT = click.option("--limit", type=int, default=50, show_default=True)
IDS = click.option("--id", "ids", type=int, multiple=True, help="Only these ids.")
YES = click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
CONFIG = click.option(
    "-c",
    "--config",
    type=click.Path(dir_okay=False),
    help="Config file (default: $CONNECTORD_CONFIG, else ./connectors.toml).",
)


def on_state(cfg: Config, work: Callable[[StateBackend], Awaitable[T]]) -> T:
    """Open the configured state (never creating an SQLite file), run ``work``, close."""
    if not cfg.shared_state and not cfg.state_path.exists():
        raise click.ClickException(f"no state file at {cfg.state_path}: nothing recorded yet")

    quiet_logs(cfg)

    async def run() -> T:
        state = cfg.state_backend()
        await state.open()
        try:
            return await work(state)
        finally:
            await state.close()

    try:
        return asyncio.run(run())
    except StateError as err:
        raise click.ClickException(str(err)) from None


def quiet_logs(cfg: Config) -> None:
    """Only warnings, on stderr: the output of these commands is for reading (or JSON)."""
    import sys

    from .log import configure, set_secrets

    configure("warning", cfg.daemon.log_format, stream=sys.stderr)
    set_secrets(cfg.secrets)


async def _known(cfg: Config, state: StateBackend, name: str) -> None:
    """Accept a configured connector, or one the state still holds records for (removed
    from the configuration or renamed: its queue and dead letters stay reachable so that
    they can be listed, replayed or dropped)."""
    if name in cfg.connectors:
        return
    queued, dead = await state.queue_depth(), await state.dead_letter_count()
    assert isinstance(queued, dict) and isinstance(dead, dict)
    if name not in set(queued) | set(dead):
        raise click.ClickException(f"no connector named {name!r} in {cfg.path}")
    click.echo(
        f"note: {name} is not in {cfg.path}; its records stay in the state until it is "
        "configured again or they are dropped",
        err=True,
    )


def _show(noun: str, name: str, total: int, rows: list[dict[str, Any]], line: Callable) -> None:
    """The listing both groups print: a count, then a line or two per row."""
    from .cli import _when

    click.echo(
        f"{plural(total, noun)} for {name}"
        + (f" (showing {len(rows)})" if total > len(rows) else "")
    )
    for row in rows:
        click.echo(line(row, _when))


def _load_known(config: str | None, name: str) -> Config:
    from .cli import _load

    cfg, _ = _load(config)
    on_state(cfg, lambda state: _known(cfg, state, name))
    return cfg


# --- dead letters ---------------------------------------------------------------------


@click.group()
def dlq() -> None:
    """Dead letters: records a destination refused for good, with the reason."""


def _dead_line(row: dict[str, Any], when: Callable) -> str:
    record = row["record"]
    what = who = ""
    if isinstance(record, dict):
        what = record.get("event") or record.get("type") or "?"
        who = record.get("userId") or record.get("anonymousId") or ""
    return (
        f"  #{row['id']}  {when(row['created_at'])}  [{row['stage']}] {what} {who}\n"
        f"      {row['reason']}"
    )


@dlq.command("list")
@NAME
@CONFIG
@LIMIT
@click.option("--json", "as_json", is_flag=True, help="Print records and reasons as JSON.")
def dlq_list(name: str, config: str | None, limit: int, as_json: bool) -> None:
    """Show a connector's dead letters."""
    from .cli import _dump

    cfg = _load_known(config, name)

    async def read(state: StateBackend) -> tuple[list[dict[str, Any]], int]:
        return await state.dead_letters(name, limit=limit), int(await state.dead_letter_count(name))

    rows, total = on_state(cfg, read)
    if as_json:
        _dump({"total": total, "dead_letters": rows})
    else:
        _show("dead letter", name, total, rows, _dead_line)


@dlq.command("replay")
@NAME
@CONFIG
@IDS
def dlq_replay(name: str, config: str | None, ids: tuple[int, ...]) -> None:
    """Queue dead letters for delivery again (through the current mappings)."""
    cfg = _load_known(config, name)

    async def replay(state: StateBackend) -> tuple[int, bool]:
        moved = await state.replay_dead_letters(name, list(ids) or None)
        return moved, await state.holder(connector_lease(name)) is not None

    moved, owned = on_state(cfg, replay)
    click.echo(f"queued {plural(moved, 'record')} of {name} for delivery")
    if not owned:
        click.echo(
            f"no daemon is running this connector: run `connectord sync {name}` "
            "or start the daemon to deliver them"
        )


@dlq.command("purge")
@NAME
@CONFIG
@IDS
@YES
def dlq_purge(name: str, config: str | None, ids: tuple[int, ...], yes: bool) -> None:
    """Delete dead letters for good."""
    cfg = _load_known(config, name)
    what = plural(len(ids), "dead letter") if ids else "all dead letters"
    if not yes:
        click.confirm(f"Delete {what} of {name}? They cannot be recovered", abort=True)
    removed = on_state(cfg, lambda state: state.purge_dead_letters(name, list(ids) or None))
    click.echo(f"deleted {plural(removed, 'dead letter')} of {name}")


# --- queued records -------------------------------------------------------------------


@click.group()
def queue() -> None:
    """Queued records: accepted, not yet delivered or dead-lettered."""


def _queued_line(row: dict[str, Any], when: Callable) -> str:
    record = row["record"]
    if not isinstance(record, dict):
        return f"  #{row['id']}  {when(row['enqueued_at'])}  (not an object)"
    what = f"{record.get('type')} {record.get('event') or ''}".strip()
    return f"  #{row['id']}  {when(row['enqueued_at'])}  {what}  {record.get('messageId')}"


@queue.command("list")
@NAME
@CONFIG
@LIMIT
@click.option("--json", "as_json", is_flag=True, help="Print ids and records as JSON.")
def queue_list(name: str, config: str | None, limit: int, as_json: bool) -> None:
    """Show a connector's queued records, oldest first (works while the daemon runs)."""
    from .cli import _dump

    cfg = _load_known(config, name)

    async def read(state: StateBackend) -> tuple[list[dict[str, Any]], int]:
        return await state.list_queue(name, limit), int(await state.queue_depth(name))

    rows, total = on_state(cfg, read)
    if as_json:
        _dump({"total": total, "queued": rows})
    else:
        _show("queued record", name, total, rows, _queued_line)


@queue.command("drop")
@NAME
@CONFIG
@click.option("--id", "ids", type=int, multiple=True, help="Queue ids (from `queue list`).")
@click.option("--all", "drop_all", is_flag=True, help="Every queued record of NAME.")
@YES
def queue_drop(
    name: str, config: str | None, ids: tuple[int, ...], drop_all: bool, yes: bool
) -> None:
    """Delete queued records for good: they are never delivered."""
    if bool(ids) == drop_all:
        raise click.UsageError("give --id (repeatable) or --all")
    cfg = _load_known(config, name)
    what = plural(len(ids), "queued record") if ids else "every queued record"
    if not yes:
        click.confirm(f"Delete {what} of {name}? They will never be delivered", abort=True)
    removed = on_state(cfg, lambda state: state.drop_queue(name, list(ids) if ids else None))
    click.echo(f"dropped {plural(removed, 'queued record')} of {name}")
