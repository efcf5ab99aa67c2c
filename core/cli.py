"""The ``connectord`` command line."""

from __future__ import annotations

import asyncio
import contextlib
import sys
import time
from datetime import UTC, datetime
from typing import Any

import click
import orjson

from . import __version__
from .cli_text import plugin_rows, plural
from .config import Config, ConfigError, config_path, load_config
from .errors import ConnectordError, PluginError, StateError
from .registry import Registry, load_registry

CONFIG_HELP = "Config file (default: $CONNECTORD_CONFIG, else ./connectors.toml)."


def _registry() -> Registry:
    try:
        return load_registry()
    except PluginError as err:
        raise click.ClickException(str(err)) from None


def _load(config: str | None, registry: Registry | None = None) -> tuple[Config, Registry]:
    registry = registry or _registry()
    try:
        return load_config(config_path(config), registry), registry
    except ConfigError as err:
        click.echo(str(err), err=True)
        sys.exit(1)


def _dump(data: Any) -> None:
    click.echo(orjson.dumps(data, option=orjson.OPT_INDENT_2, default=str).decode())


def _when(timestamp: float | None) -> str:
    if not timestamp:
        return "never"
    moment = datetime.fromtimestamp(timestamp, UTC)
    ago = time.time() - timestamp
    unit = (
        f"{int(ago)}s"
        if ago < 120
        else f"{int(ago // 60)}m"
        if ago < 7200
        else f"{int(ago // 3600)}h"
        if ago < 172800
        else f"{int(ago // 86400)}d"
    )
    return f"{moment:%Y-%m-%d %H:%M:%S}Z ({unit} ago)"


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="connectord")
def cli() -> None:
    """Move customer data between engagement and analytics platforms."""


@cli.command()
@click.option("-c", "--config", type=click.Path(dir_okay=False), help=CONFIG_HELP)
def run(config: str | None) -> None:
    """Run the daemon in the foreground (systemd Type=notify)."""
    from .daemon import run_daemon

    sys.exit(run_daemon(config_path(config), _registry()))


@cli.command()
@click.option("-c", "--config", type=click.Path(dir_okay=False), help=CONFIG_HELP)
@click.option("--online", is_flag=True, help="Also verify credentials against the vendors.")
def check(config: str | None, online: bool) -> None:
    """Validate the configuration; exit 1 on any error."""
    cfg, _ = _load(config)
    enabled = cfg.enabled()
    click.echo(
        f"{cfg.path}: valid — {plural(len(cfg.connectors), 'connector')}, {len(enabled)} enabled"
    )
    for note in cfg.notes:
        click.echo(f"  note: {note}")
    problems = _check_state_file(cfg)
    if online:
        from .checks import check_online

        problems += asyncio.run(check_online(cfg, click.echo))
    if problems:
        for problem in problems:
            click.echo(f"error: {problem}", err=True)
        sys.exit(1)


def _check_state_file(cfg: Config) -> list[str]:
    """The SQLite state file passes SQLite's quick check (a PostgreSQL state is the
    database's to check)."""
    if cfg.shared_state or not cfg.state_path.exists():
        return []
    from .state import Store

    try:
        store = Store(cfg.state_path, readonly=True, create=False)
    except StateError as err:
        return [str(err)]
    try:
        result = store.conn.execute("PRAGMA quick_check").fetchone()[0]
    finally:
        store.close()
    return [] if result == "ok" else [f"state file {cfg.state_path} fails its check: {result}"]


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output with schemas.")
def plugins(as_json: bool) -> None:
    """List every source, mapping and destination type, its options and its plugin."""
    registry = _registry()
    described = [t.describe() for t in registry.all()]
    if as_json:
        _dump(described)
        return
    for kind in ("source", "mapping", "destination"):
        click.echo(click.style(f"{kind}s", bold=True))
        for line in plugin_rows(described, kind):
            click.echo(line)
    click.echo("(* required option; `connectord plugins --json` gives every option's schema)")


@cli.command("new-plugin")
@click.argument("name")
@click.option(
    "-d",
    "--directory",
    type=click.Path(file_okay=False),
    default=".",
    show_default=True,
    help="Where to create connectord-NAME/.",
)
@click.option("--title", help='Vendor name for prose, e.g. "Acme CRM" (default: from NAME).')
def new_plugin(name: str, directory: str, title: str | None) -> None:
    """Create connectord-NAME/, an installable plugin package with a source, a mapping,
    a destination, a vendor emulator and tests."""
    from pathlib import Path

    from .scaffold import PluginNames, ScaffoldError, connectord_source, create_plugin

    try:
        target = create_plugin(name, Path(directory), title=title)
    except ScaffoldError as err:
        raise click.ClickException(str(err)) from None
    names = PluginNames.parse(name, title)
    click.echo(f"created {target}")
    click.echo(
        f"types: {names.snake}.events (pull source), {names.snake}.rename_events "
        f"(mapping), {names.snake} (destination)"
    )
    click.echo("next:")
    click.echo(f"  cd {target}")
    click.echo("  python -m venv .venv")
    source = connectord_source()
    if source:
        click.echo(f"  .venv/bin/pip install -e {source}    # connectord itself, from its checkout")
    click.echo("  .venv/bin/pip install -e '.[test]'")
    click.echo("  .venv/bin/pytest")


@cli.command()
@click.argument("name")
@click.option("-c", "--config", type=click.Path(dir_okay=False), help=CONFIG_HELP)
@click.option(
    "--full-refresh", is_flag=True, help="Forget the checkpoint first and read from the start."
)
def sync(name: str, config: str | None, full_refresh: bool) -> None:
    """Run one connector once now and print progress; exit 1 on failure.

    A pull connector reads its source from the checkpoint; a push connector delivers
    what is queued.
    """
    cfg, _ = _load(config)
    if name not in cfg.connectors:
        raise click.ClickException(
            f"no connector named {name!r} in {cfg.path}; "
            f"configured: {', '.join(sorted(cfg.connectors)) or 'none'}"
        )
    from .cli_sync import TerminalOutput
    from .log import configure, set_secrets
    from .sync import run_sync

    configure(
        cfg.daemon.log_level if cfg.daemon.log_level != "info" else "warning",
        cfg.daemon.log_format,
        stream=sys.stderr,
    )
    set_secrets(cfg.secrets)
    try:
        summary = asyncio.run(run_sync(cfg, name, TerminalOutput(), full_refresh=full_refresh))
    except (ConnectordError, KeyboardInterrupt) as err:
        raise click.ClickException(str(err) or "interrupted") from None
    sys.exit(0 if summary.status == "succeeded" else 1)


@cli.command()
@click.option("-c", "--config", type=click.Path(dir_okay=False), help=CONFIG_HELP)
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def status(config: str | None, as_json: bool) -> None:
    """Per connector: last run, counts, checkpoint, queue depth and dead letters."""
    cfg, _ = _load(config)
    from .cli_queue import quiet_logs
    from .status import collect_status

    quiet_logs(cfg)
    try:
        report = collect_status(cfg)
    except StateError as err:
        raise click.ClickException(str(err)) from None
    if as_json:
        _dump(report)
        return
    if not report["connectors"]:
        click.echo("no connectors configured")
    for entry in report["connectors"]:
        state = "enabled" if entry["enabled"] else "disabled"
        click.echo(
            click.style(f"{entry['name']}", bold=True)
            + f"  {entry['source']} → {entry['destination']}  ({state}, {entry['mode']})"
        )
        run_info = entry.get("last_run")
        if run_info:
            click.echo(
                f"  last run:     {run_info['status']} at {_when(run_info['started_at'])}"
                f", {run_info['records_in']} in / {run_info['records_out']} out"
                f" / {run_info['rejected']} rejected"
                + (f" — {run_info['error']}" if run_info.get("error") else "")
            )
        elif entry["mode"] == "pull":
            click.echo("  last run:     never")
        counts = entry["counts"]
        click.echo(
            f"  records:      {counts['received']} received, {counts['delivered']} "
            f"delivered; last delivery {_when(counts['last_delivered_at'])}"
        )
        click.echo(
            f"  queue:        {entry['queue_depth']}   dead letters: {entry['dead_letters']}"
        )
        if entry.get("checkpoint") is not None:
            click.echo(f"  checkpoint:   {orjson.dumps(entry['checkpoint']).decode()}")
        if entry.get("schedule"):
            click.echo(f"  schedule:     {entry['schedule']}")
        if entry.get("owner") and len(report.get("nodes") or []) > 1:
            owner = entry["owner"]
            click.echo(
                f"  owned by:     {owner['node']} (epoch {owner['epoch']}, "
                f"lease expires in {owner['expires_in']:.0f}s unless renewed)"
            )
        for key, value in (entry.get("notices") or {}).items():
            text = value if isinstance(value, str) else orjson.dumps(value).decode()
            click.echo(f"  notice:       {key}: {text}")
    for entry in report.get("orphaned", []):
        click.echo(
            click.style(entry["name"], bold=True)
            + "  not in the configuration; left in the state file:"
            + f" queue {entry['queue_depth']}, dead letters {entry['dead_letters']}"
            + f"\n  see `connectord queue list {entry['name']}` / `dlq list {entry['name']}`"
        )
    if report.get("daemon_pid"):
        click.echo(f"\ndaemon running (pid {report['daemon_pid']})")
    if len(report.get("nodes") or []) > 1:
        click.echo(f"\ndaemons sharing the state: {', '.join(report['nodes'])}")


@cli.command()
@click.option("-c", "--config", type=click.Path(dir_okay=False), help=CONFIG_HELP)
@click.option("--interval", type=float, default=1.0, show_default=True, help="Seconds.")
def top(config: str | None, interval: float) -> None:
    """Live view of every connector: rates, queue, dead letters, health, last run."""
    cfg, _ = _load(config)
    from .top import run_top

    with contextlib.suppress(KeyboardInterrupt):
        run_top(cfg, interval=max(0.2, interval))


@cli.command()
@click.argument("name")
@click.option("-c", "--config", type=click.Path(dir_okay=False), help=CONFIG_HELP)
@click.option("--mapped", is_flag=True, help="After the mappings (default: as received).")
def tap(name: str, config: str | None, mapped: bool) -> None:
    """Stream the records flowing through a connector as JSON lines (secrets redacted)."""
    cfg, _ = _load(config)
    if name not in cfg.connectors:
        raise click.ClickException(f"no connector named {name!r} in {cfg.path}")
    from .tap import stream_to
    from .ui.client import DaemonUnreachable

    try:
        stream_to(cfg, name, mapped=mapped, out=sys.stdout, notes=sys.stderr)
    except DaemonUnreachable as err:
        raise click.ClickException(str(err)) from None
    except KeyboardInterrupt:
        pass


@cli.group()
def docs() -> None:
    """Generate reference documentation."""


@docs.command("config")
@click.option(
    "-o", "--output", type=click.Path(dir_okay=False), help="Write here instead of stdout."
)
@click.option("--check", is_flag=True, help="Exit 1 if --output is not current; write nothing.")
def docs_config(output: str | None, check: bool) -> None:
    """The configuration reference (docs/configuration.md): [daemon], connector and
    delivery settings and every built-in plugin's options."""
    from pathlib import Path

    from .docgen import REGENERATE, render_configuration, write_configuration

    if output is None:
        click.echo(render_configuration(), nl=False)
        return
    path = Path(output)
    if check:
        current = path.exists() and path.read_text(encoding="utf-8") == render_configuration()
        if not current:
            raise click.ClickException(f"{output} is out of date; run: {REGENERATE}")
        click.echo(f"{output} is current")
        return
    changed = write_configuration(path)
    click.echo(f"{output}: {'updated' if changed else 'already current'}")


def _add_commands() -> None:
    from .cli_queue import dlq, queue

    cli.add_command(dlq)
    cli.add_command(queue)


_add_commands()


def main() -> None:
    cli()


if __name__ == "__main__":  # pragma: no cover
    main()
