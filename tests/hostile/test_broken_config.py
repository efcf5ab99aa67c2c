"""Broken ``connectors.toml`` files: each error names the place and the fix.

Every variant below is a working configuration with one mistake on the line marked
``# <-``. ``connectord check`` must exit 1 and print, for that mistake, the file and
line, the dotted key, and words that tell the operator what to write instead.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from connectord.cli import cli
from tests.chaos.support import report

GOOD = {
    "daemon": '[daemon]\nstate = "state.db"\nlisten = "127.0.0.1:8787"\n',
    "source": 'source = { type = "http.webhook", token = "tok-12345678" }',
    "destination": 'destination = { type = "webhook", url = "http://127.0.0.1:9/hook" }',
}


def config(
    *, daemon: str | None = None, body: str | None = None, header: str = "relay", mark: str = ""
) -> str:
    source, destination = GOOD["source"], GOOD["destination"]
    return (
        (daemon if daemon is not None else GOOD["daemon"])
        + f"\n[connectors.{header}]{mark}\n"
        + (body if body is not None else f"{source}\n{destination}\n")
    )


def body(*lines: str) -> str:
    return "\n".join(lines) + "\n"


S, D = GOOD["source"], GOOD["destination"]

# (name, text, dotted key, words of the fix)
VARIANTS = [
    (
        "unterminated string",
        config(body=body('source = { type = "http.webhook, token = "x" }  # <-', D)),
        "(file)",
        "strings need quotes",
    ),
    (
        "duplicate key",
        config(body=body(S, S + "  # <-", D)),
        "(file)",
        "not valid TOML",
    ),
    (
        "misspelt [daemon]",
        '[deamon]  # <-\nstate = "state.db"\n' + config(daemon="").split("\n", 1)[1],
        "deamon",
        "did you mean 'daemon'",
    ),
    (
        "misspelt daemon setting",
        config(daemon='[daemon]\nlisen = "127.0.0.1:8787"  # <-\n'),
        "daemon.lisen",
        "did you mean 'listen'",
    ),
    (
        "listen without a port",
        config(daemon='[daemon]\nlisten = "127.0.0.1"  # <-\n'),
        "daemon.listen",
        "host:port",
    ),
    (
        "listen port out of range",
        config(daemon='[daemon]\nlisten = "127.0.0.1:70000"  # <-\n'),
        "daemon.listen",
        "host:port",
    ),
    (
        "unknown durability",
        config(daemon='[daemon]\ndurability = "disk"  # <-\n'),
        "daemon.durability",
        "'process' or 'power'",
    ),
    (
        "unknown log level",
        config(daemon='[daemon]\nlog_level = "verbose"  # <-\n'),
        "daemon.log_level",
        "'debug'",
    ),
    (
        "zero shutdown timeout",
        config(daemon="[daemon]\nshutdown_timeout = 0  # <-\n"),
        "daemon.shutdown_timeout",
        "greater than 0",
    ),
    (
        "shutdown timeout with a unit",
        config(daemon='[daemon]\nshutdown_timeout = "10s"  # <-\n'),
        "daemon.shutdown_timeout",
        "number",
    ),
    (
        "unknown time zone",
        config(daemon='[daemon]\ntimezone = "Mars/Olympus"  # <-\n'),
        "daemon.timezone",
        "IANA name",
    ),
    (
        "tiny body limit",
        config(daemon="[daemon]\nmax_body_bytes = 10  # <-\n"),
        "daemon.max_body_bytes",
        "greater than or equal to 1024",
    ),
    (
        "connector name with capitals",
        config(header="My_Relay", mark="  # <-"),
        "connectors.My_Relay",
        "lowercase letters",
    ),
    (
        "misspelt destination key",
        config(body=body(S, D.replace("destination", "destinaton") + "  # <-")),
        "connectors.relay.destinaton",
        "did you mean 'destination'",
    ),
    (
        "no source",
        config(body=body(D), mark="  # <-"),
        "connectors.relay.source",
        'source = { type = "..." }',
    ),
    (
        "source is a string",
        config(body=body('source = "http.webhook"  # <-', D)),
        "connectors.relay.source",
        "must be a table",
    ),
    (
        "source without a type",
        config(body=body('source = { token = "tok-12345678" }  # <-', D)),
        "connectors.relay.source.type",
        "every source needs a type; expected one of",
    ),
    (
        "misspelt source type",
        config(body=body(S.replace("http.webhook", "http.webhok") + "  # <-", D)),
        "connectors.relay.source.type",
        "did you mean 'http.webhook'",
    ),
    (
        "misspelt destination type",
        config(body=body(S, D.replace('"webhook"', '"webhooks"') + "  # <-")),
        "connectors.relay.destination.type",
        "did you mean 'webhook'",
    ),
    (
        "misspelt source option",
        config(body=body(S.replace("token", "tokn") + "  # <-", D)),
        "connectors.relay.source.tokn",
        "did you mean 'token'",
    ),
    (
        "push source without credentials",
        config(body=body('source = { type = "http.webhook" }  # <-', D)),
        "connectors.relay.source",
        "set token or hmac_secret",
    ),
    (
        "destination URL is not a URL",
        config(body=body(S, 'destination = { type = "webhook", url = "not a url" }  # <-')),
        "connectors.relay.destination.url",
        "URL",
    ),
    (
        "zero batch size",
        config(body=body(S, D[:-2] + ", batch_size = 0 }  # <-")),
        "connectors.relay.destination.batch_size",
        "greater than or equal to 1",
    ),
    (
        "unknown destination mode",
        config(body=body(S, D[:-2] + ', mode = "stream" }  # <-')),
        "connectors.relay.destination.mode",
        "'batch' or 'each'",
    ),
    (
        "unset environment variable",
        config(
            body=body('source = { type = "http.webhook", token = "${NOT_SET_ANYWHERE}" }  # <-', D)
        ),
        "connectors.relay.source.token",
        "export NOT_SET_ANYWHERE",
    ),
    (
        "secret file missing",
        config(
            body=body('source = { type = "http.webhook", token_file = "missing.txt" }  # <-', D)
        ),
        "connectors.relay.source.token_file",
        "check the path",
    ),
    (
        "secret and secret file",
        config(body=body(S[:-2] + ', token_file = "t.txt" }  # <-', D)),
        "connectors.relay.source.token_file",
        "keep one",
    ),
    (
        "misspelt delivery setting",
        config(body=body(S, D, "delivery = { batchsize = 10 }  # <-")),
        "connectors.relay.delivery.batchsize",
        "did you mean 'batch_size'",
    ),
    (
        "zero concurrency",
        config(body=body(S, D, "delivery = { concurrency = 0 }  # <-")),
        "connectors.relay.delivery.concurrency",
        "greater than or equal to 1",
    ),
    (
        "negative queue bound",
        config(body=body(S, D, "delivery = { max_queue = -5 }  # <-")),
        "connectors.relay.delivery.max_queue",
        "greater than or equal to 1",
    ),
    (
        "request timeout of zero",
        config(body=body(S, D, "delivery = { request_timeout = 0 }  # <-")),
        "connectors.relay.delivery.request_timeout",
        "greater than 0",
    ),
    (
        "schedule on a push connector",
        config(body=body(S, D, 'schedule = "every 5m"  # <-')),
        "connectors.relay.schedule",
        "remove `schedule`",
    ),
    (
        "mapping is a string",
        config(body=body(S, D, 'mapping = "fields"  # <-')),
        "connectors.relay.mapping",
        "list of mapping tables",
    ),
    (
        "misspelt mapping type",
        config(body=body(S, D, 'mapping = [{ type = "feilds" }]  # <-')),
        "connectors.relay.mapping[0].type",
        "did you mean 'fields'",
    ),
    (
        "filter without a condition",
        config(body=body(S, D, 'mapping = [{ type = "filter" }]  # <-')),
        "connectors.relay.mapping[0].when",
        "required option is missing",
    ),
    (
        "broken JMESPath",
        config(body=body(S, D, 'mapping = [{ type = "filter", when = "type ==" }]  # <-')),
        "connectors.relay.mapping[0].when",
        "expression",
    ),
    (
        "empty field path",
        config(
            body=body(
                S, D, 'mapping = [{ type = "fields", set = { "properties..x" = "event" } }]  # <-'
            )
        ),
        "connectors.relay.mapping[0].set",
        "dotted names like properties.plan",
    ),
    (
        "enabled as a string",
        config(body=body('enabled = "yes"  # <-', S, D)),
        "connectors.relay.enabled",
        "boolean",
    ),
    (
        "unsupported warehouse URL",
        config(body=body(S, 'destination = { type = "warehouse", url = "mysql://db/x" }  # <-')),
        "connectors.relay.destination.url",
        "unsupported warehouse URL scheme",
    ),
    (
        "zero signature tolerance",
        config(body=body(S[:-2] + ", signature_tolerance = 0 }  # <-", D)),
        "connectors.relay.source.signature_tolerance",
        "greater than or equal to 1",
    ),
    (
        "unknown top-level key",
        'stat = "state.db"  # <-\n' + GOOD["daemon"],
        "stat",
        "expected [daemon] or [connectors.NAME]",
    ),
    (
        "connectors is not a table",
        "connectors = 5  # <-\n" + GOOD["daemon"],
        "connectors",
        "[connectors.NAME] tables",
    ),
]


def run_check(path: Path) -> tuple[int, str]:
    result = CliRunner().invoke(cli, ["check", "-c", str(path)], catch_exceptions=False)
    return result.exit_code, result.output


def marked_line(text: str) -> int:
    [line] = [n for n, row in enumerate(text.splitlines(), start=1) if "# <-" in row]
    return line


@pytest.mark.parametrize(("name", "text", "key", "fix"), VARIANTS, ids=[v[0] for v in VARIANTS])
def test_broken_config_names_file_line_key_and_fix(name, text, key, fix, tmp_path):
    path = tmp_path / "connectors.toml"
    path.write_text(text)
    (tmp_path / "t.txt").write_text("tok-from-file-123")
    code, output = run_check(path)
    assert code == 1, output
    where = f"{path}:{marked_line(text)}: {key}:"
    lines = [row for row in output.splitlines() if where in row]
    assert lines, f"no error at {where!r} in:\n{output}"
    assert any(fix in row for row in lines), f"{fix!r} not in {lines}"


def test_the_corpus_is_large_enough():
    assert len(VARIANTS) >= 30
    report("broken configurations", variants=len(VARIANTS))


def test_a_secret_of_the_wrong_type_is_not_echoed(tmp_path):
    path = tmp_path / "connectors.toml"
    path.write_text(config(body=body('source = { type = "http.webhook", token = 98765432123 }', D)))
    code, output = run_check(path)
    assert code == 1
    assert "98765432123" not in output
    assert "hidden: it is a secret" in output
