"""CLI text: correct plurals, and `plugins` as aligned plain-text columns with options."""

from __future__ import annotations

import re

from click.testing import CliRunner

from connectord.cli import cli
from connectord.cli_text import option_names, plain, plural
from connectord.testing import write_config


def test_plurals():
    assert [plural(n, "connector") for n in (0, 1, 2)] == [
        "0 connectors",
        "1 connector",
        "2 connectors",
    ]
    assert plural(1, "dead letter") == "1 dead letter"
    assert plural(3, "entry", "entries") == "3 entries"


def test_docstring_markup_is_removed():
    assert plain("as ``metric`` records (`x`, :class:`Batch`)") == "as metric records (x, Batch)"


def test_required_options_are_marked():
    options = [{"name": "api_key", "required": True}, {"name": "base_url", "required": False}]
    assert option_names(options) == "api_key*, base_url"
    assert option_names([]) == "none"


def test_check_says_one_connector(tmp_path):
    config = write_config(
        tmp_path,
        '[connectors.one]\nsource = { type = "http.webhook", token = "t0ken-for-tests" }'
        '\ndestination = { type = "webhook", url = "http://127.0.0.1:9/x" }\n',
    )
    result = CliRunner().invoke(cli, ["check", "-c", str(config)])
    assert result.exit_code == 0, result.output
    assert "valid — 1 connector, 1 enabled" in result.output


def test_plugins_prints_aligned_plain_columns_with_options():
    result = CliRunner().invoke(cli, ["plugins"])
    assert result.exit_code == 0, result.output
    out = result.output
    assert "``" not in out and "`" not in out.replace("`connectord plugins --json`", "")
    rows = [line for line in out.splitlines() if re.match(r"^  \S", line)]
    assert len(rows) > 5
    # Type, mode and summary start in the same columns for every kind.
    summary_columns = {len(re.match(r"^  \S+\s+(pull|push)?\s*", r).group(0)) for r in rows}
    assert len(summary_columns) == 1, rows
    assert "options: token*" in out or "options: token" in out  # http.webhook's options
    assert "plugin: connectord.plugins.webhook" in out
    assert "* required option" in out
