"""``connectord queue list|drop NAME``: records accepted and not yet delivered or
dead-lettered, read from (and dropped in) the state file while the daemon runs."""

from __future__ import annotations

import click

from .cli import CONFIG_HELP, _dump, _known, _load, _store, _when
from .cli_text import plural


@click.group()
def queue() -> None:
    """Queued records: accepted, not yet delivered or dead-lettered."""


@queue.command("list")
@click.argument("name")
@click.option("-c", "--config", type=click.Path(dir_okay=False), help=CONFIG_HELP)
@click.option("--limit", type=int, default=50, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print ids and records as JSON.")
def queue_list(name: str, config: str | None, limit: int, as_json: bool) -> None:
    """Show a connector's queued records, oldest first (works while the daemon runs)."""
    from .queue import list_rows

    cfg, _ = _load(config)
    _known(cfg, name)
    store = _store(cfg)
    try:
        rows = list_rows(store, name, limit=limit)
        total = store.queue_depth(name)
    finally:
        store.close()
    if as_json:
        _dump({"total": total, "queued": rows})
        return
    click.echo(
        f"{plural(total, 'queued record')} for {name}"
        + (f" (showing {len(rows)})" if total > len(rows) else "")
    )
    for row in rows:
        record = row["record"]
        if isinstance(record, dict):
            what = f"{record.get('type')} {record.get('event') or ''}".strip()
            click.echo(
                f"  #{row['id']}  {_when(row['enqueued_at'])}  {what}  {record.get('messageId')}"
            )
        else:
            click.echo(f"  #{row['id']}  {_when(row['enqueued_at'])}  (not an object)")


@queue.command("drop")
@click.argument("name")
@click.option("-c", "--config", type=click.Path(dir_okay=False), help=CONFIG_HELP)
@click.option("--id", "ids", type=int, multiple=True, help="Queue ids (from `queue list`).")
@click.option("--all", "drop_all", is_flag=True, help="Every queued record of NAME.")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
def queue_drop(
    name: str, config: str | None, ids: tuple[int, ...], drop_all: bool, yes: bool
) -> None:
    """Delete queued records for good: they are never delivered."""
    from .queue import drop_rows

    if bool(ids) == drop_all:
        raise click.UsageError("give --id (repeatable) or --all")
    cfg, _ = _load(config)
    _known(cfg, name)
    what = plural(len(ids), "queued record") if ids else "every queued record"
    if not yes:
        click.confirm(f"Delete {what} of {name}? They will never be delivered", abort=True)
    store = _store(cfg)
    try:
        removed = drop_rows(store, name, list(ids) if ids else None)
    finally:
        store.close()
    click.echo(f"dropped {plural(removed, 'queued record')} of {name}")
