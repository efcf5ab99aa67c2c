"""docs/configuration.md is generated; this fails when it no longer matches the code."""

from __future__ import annotations

import difflib
from pathlib import Path

from click.testing import CliRunner

from connectord.cli import cli
from connectord.docgen import REGENERATE, render_configuration

DOC = Path(__file__).resolve().parent.parent / "docs" / "configuration.md"


def test_configuration_reference_is_current():
    expected = render_configuration()
    committed = DOC.read_text(encoding="utf-8") if DOC.exists() else ""
    if committed != expected:
        diff = "".join(
            list(
                difflib.unified_diff(
                    committed.splitlines(keepends=True),
                    expected.splitlines(keepends=True),
                    "docs/configuration.md (committed)",
                    "docs/configuration.md (generated)",
                    n=1,
                )
            )[:60]
        )
        raise AssertionError(
            f"docs/configuration.md is out of date. Regenerate it from the repository root "
            f"with:\n\n    .venv/bin/{REGENERATE}\n\n{diff}"
        )


def test_reference_covers_daemon_connector_delivery_and_every_builtin(registry):
    text = render_configuration()
    for heading in ("## `[daemon]`", "## `[connectors.NAME]`", "### `delivery`"):
        assert heading in text
    for plugin in registry.all():
        if plugin.package == "connectord":
            assert f"### `{plugin.name}`" in text
    assert "| `token` | secret; or `token_file` |" in text
    assert '| `mode` | one of `"batch"`, `"each"` | `"batch"` |' in text
    assert "| `batch_size` | integer (>= 1, <= 50000) | `500` |" in text


def test_docs_config_command_writes_and_checks(tmp_path):
    target = tmp_path / "configuration.md"
    runner = CliRunner()
    stale = runner.invoke(cli, ["docs", "config", "-o", str(target), "--check"])
    assert stale.exit_code == 1
    assert REGENERATE in stale.output
    written = runner.invoke(cli, ["docs", "config", "-o", str(target)])
    assert written.exit_code == 0 and "updated" in written.output
    assert target.read_text() == render_configuration()
    again = runner.invoke(cli, ["docs", "config", "-o", str(target)])
    assert "already current" in again.output
    assert runner.invoke(cli, ["docs", "config", "-o", str(target), "--check"]).exit_code == 0
    printed = runner.invoke(cli, ["docs", "config"])
    assert printed.output == render_configuration()
