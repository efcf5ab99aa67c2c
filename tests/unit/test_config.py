"""connectors.toml validation: every problem reported at once, each with its place."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from connectord.config import ConfigError, config_path, load_config, locate


def load(tmp_path: Path, text: str, registry, env: dict[str, str] | None = None):
    path = tmp_path / "connectors.toml"
    path.write_text(textwrap.dedent(text))
    return load_config(path, registry, environ=env or {})


def errors(tmp_path: Path, text: str, registry, env=None) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        load(tmp_path, text, registry, env)
    return [i.render("connectors.toml") for i in caught.value.issues]


DEMO = """
[connectors.demo]
source = { type = "http.webhook", token = "abcd1234" }
destination = { type = "warehouse" }
"""


def test_a_valid_file_loads(tmp_path, registry):
    config = load(tmp_path, DEMO, registry)
    demo = config.connectors["demo"]
    assert demo.is_push and demo.enabled
    assert demo.source.options.token.get_secret_value() == "abcd1234"
    assert config.secrets == frozenset({"abcd1234"})
    assert config.daemon.listen == "127.0.0.1:8787"
    assert config.state_path == tmp_path / "connectord.db"


def test_toml_syntax_error_has_a_line(tmp_path, registry):
    [message] = errors(tmp_path, "[daemon]\nlisten = 127.0.0.1\n", registry)
    assert message.startswith("connectors.toml:2: (file): not valid TOML")


def test_missing_file(tmp_path, registry):
    with pytest.raises(ConfigError, match="config file not found"):
        load_config(tmp_path / "nope.toml", registry)


def test_every_error_is_reported_at_once(tmp_path, registry):
    found = errors(
        tmp_path,
        """
        [daemon]
        listen = "localhost"
        durabilty = "power"

        [connectors.one]
        source = { type = "http.webhok", token = "x" }
        destination = { type = "warehouse", url = "mysql://x" }

        [connectors.two]
        source = { type = "http.webhook" }
        destination = { type = "webhook", url = "https://example.com", batch_size = "ten" }
        mapping = [{ type = "filter", when = "type ==" }]
        schedule = "every 5m"
        colour = "blue"
    """,
        registry,
    )
    text = "\n".join(found)
    assert "daemon.listen" in text
    assert "daemon.durabilty: unknown" in text and "did you mean 'durability'" in text
    assert "connectors.one.source.type: unknown source type; expected one of" in text
    assert "did you mean 'http.webhook'" in text
    assert "connectors.one.destination.url" in text and "mysql" in text
    assert "connectors.two.colour: unknown key" in text
    assert len(found) >= 5


def test_errors_inside_connectors_are_all_reported(tmp_path, registry):
    found = errors(
        tmp_path,
        """
        [connectors.two]
        source = { type = "http.webhook" }
        destination = { type = "webhook", url = "https://example.com", batch_size = "ten" }
        mapping = [{ type = "filter", when = "type ==" }]
        schedule = "every 5m"
    """,
        registry,
    )
    text = "\n".join(found)
    assert "connectors.two.source: set token or hmac_secret" in text
    assert "connectors.two.destination.batch_size" in text and "'ten' (string)" in text
    assert "connectors.two.mapping[0].when" in text and "invalid JMESPath" in text
    assert "connectors.two.schedule: push sources deliver continuously" in text


def test_lines_point_at_the_key(tmp_path, registry):
    found = errors(
        tmp_path,
        """
        [connectors.demo]
        source = { type = "http.webhook", token = "abcd1234" }

        [connectors.demo.destination]
        type = "warehouse"
        url = "sqlite:///"
    """,
        registry,
    )
    [message] = [m for m in found if "url" in m]
    assert message.startswith("connectors.toml:7:")


def test_unknown_option_suggests_the_right_one(tmp_path, registry):
    [message] = errors(
        tmp_path,
        """
        [connectors.demo]
        source = { type = "http.webhook", tokn = "abcd1234", token = "abcd1234" }
        destination = { type = "warehouse" }
    """,
        registry,
    )
    assert "connectors.demo.source.tokn: unknown option" in message
    assert "did you mean 'token'" in message


def test_missing_required_option(tmp_path, registry):
    [message] = errors(
        tmp_path,
        """
        [connectors.alert]
        source = { type = "http.webhook", token = "abcd1234" }
        destination = { type = "webhook" }
    """,
        registry,
    )
    assert "connectors.alert.destination.url: required option is missing" in message
    assert "found nothing" in message


def test_missing_type_and_missing_tables(tmp_path, registry):
    found = errors(
        tmp_path,
        """
        [connectors.a]
        source = { token = "abcd1234" }
        destination = { type = "warehouse" }

        [connectors.b]
        source = { type = "http.webhook", token = "abcd1234" }
    """,
        registry,
    )
    text = "\n".join(found)
    assert "connectors.a.source.type: every source needs a type" in text
    assert "connectors.b.destination: every connector needs a destination" in text


def test_invalid_connector_name(tmp_path, registry):
    found = errors(tmp_path, DEMO.replace("connectors.demo", 'connectors."Bad Name"'), registry)
    assert any("invalid connector name" in m for m in found)


def test_secret_values_are_never_echoed(tmp_path, registry):
    found = errors(
        tmp_path,
        """
        [connectors.demo]
        source = { type = "http.webhook", token = ["hunter2-secret"] }
        destination = { type = "warehouse" }
    """,
        registry,
    )
    assert found and not any("hunter2" in m for m in found)
    assert any("hidden: it is a secret" in m for m in found)


def test_unknown_top_level_table(tmp_path, registry):
    [message] = errors(tmp_path, DEMO + "\n[connector.typo]\nx = 1\n", registry)
    assert "connector: unknown top-level table" in message
    assert "did you mean 'connectors'" in message


# --- interpolation and secret files ----------------------------------------------------


def test_environment_interpolation(tmp_path, registry):
    config = load(
        tmp_path,
        """
        [daemon]
        listen = "127.0.0.1:${PORT:-9000}"

        [connectors.demo]
        source = { type = "http.webhook", token = "${TOKEN}", max_body_bytes = 4096 }
        destination = { type = "warehouse", url = "sqlite:///${DB:-w}.db" }
    """,
        registry,
        env={"TOKEN": "from-env-1"},
    )
    assert config.daemon.listen == "127.0.0.1:9000"
    assert config.connectors["demo"].source.options.token.get_secret_value() == "from-env-1"
    assert config.connectors["demo"].destination.options.url == "sqlite:///w.db"


def test_dollar_dollar_is_a_literal_dollar(tmp_path, registry):
    config = load(tmp_path, DEMO.replace('"abcd1234"', '"a$${NOT}b"'), registry)
    assert config.connectors["demo"].source.options.token.get_secret_value() == "a${NOT}b"


def test_unset_variable_is_an_error_in_enabled_connectors(tmp_path, registry):
    [message] = errors(tmp_path, DEMO.replace('"abcd1234"', '"${MISSING_TOKEN}"'), registry)
    assert "connectors.demo.source.token: environment variable MISSING_TOKEN is not set" in message
    assert "enabled = false" in message


def test_disabled_connectors_tolerate_unset_variables_but_not_unknown_keys(tmp_path, registry):
    config = load(
        tmp_path,
        """
        [connectors.later]
        enabled = false
        source = { type = "http.webhook", token = "${LATER_TOKEN}" }
        destination = { type = "warehouse" }
    """,
        registry,
    )
    assert not config.connectors["later"].enabled
    assert any("LATER_TOKEN" in note for note in config.notes)
    found = errors(
        tmp_path,
        """
        [connectors.later]
        enabled = false
        source = { type = "http.webhook", token = "${LATER_TOKEN}", colour = "red" }
        destination = { type = "warehouse" }
    """,
        registry,
    )
    assert any("colour: unknown option" in m for m in found)


def test_secret_from_file(tmp_path, registry):
    (tmp_path / "token.txt").write_text("file-secret-99\n")
    config = load(
        tmp_path, DEMO.replace('token = "abcd1234"', 'token_file = "token.txt"'), registry
    )
    assert config.connectors["demo"].source.options.token.get_secret_value() == "file-secret-99"
    assert "file-secret-99" in config.secrets


def test_secret_file_problems(tmp_path, registry):
    [message] = errors(
        tmp_path, DEMO.replace('token = "abcd1234"', 'token_file = "missing.txt"'), registry
    )
    assert "token_file: cannot read secret file" in message and "missing.txt" in message
    (tmp_path / "t").write_text("x")
    [message] = errors(
        tmp_path,
        DEMO.replace('token = "abcd1234"', 'token = "abcd1234", token_file = "t"'),
        registry,
    )
    assert "both token and token_file are set" in message


def test_config_path_resolution(monkeypatch, tmp_path):
    monkeypatch.delenv("CONNECTORD_CONFIG", raising=False)
    monkeypatch.chdir(tmp_path)
    assert config_path() == tmp_path / "connectors.toml"
    monkeypatch.setenv("CONNECTORD_CONFIG", str(tmp_path / "env.toml"))
    assert config_path() == tmp_path / "env.toml"
    assert config_path("given.toml") == tmp_path / "given.toml"


def test_fingerprint_changes_with_the_connector(tmp_path, registry):
    first = load(tmp_path, DEMO, registry).connectors["demo"].fingerprint
    same = load(tmp_path, DEMO, registry).connectors["demo"].fingerprint
    other = load(tmp_path, DEMO.replace("abcd1234", "efgh5678"), registry)
    assert first == same != other.connectors["demo"].fingerprint


def test_delivery_settings(tmp_path, registry):
    config = load(tmp_path, DEMO + "delivery = { batch_size = 50, concurrency = 1 }\n", registry)
    delivery = config.connectors["demo"].delivery
    assert (delivery.batch_size, delivery.concurrency, delivery.max_queue) == (50, 1, 1_000_000)
    found = errors(tmp_path, DEMO + "delivery = { batch_size = 0, speed = 3 }\n", registry)
    assert any("delivery.batch_size" in m for m in found)
    assert any("delivery.speed: unknown" in m for m in found)


def test_locate_finds_headers_inline_and_dotted_keys():
    lines = textwrap.dedent("""
        [daemon]
        listen = "x"
        [connectors.a]
        source = { type = "t", token = "y" }
        destination.type = "w"
        [connectors.a.delivery]
        batch_size = 0
    """).splitlines()
    assert locate(lines, ("daemon", "listen")) == 3
    assert locate(lines, ("connectors", "a", "source", "token")) == 5
    assert locate(lines, ("connectors", "a", "destination", "type")) == 6
    assert locate(lines, ("connectors", "a", "delivery", "batch_size")) == 8
    assert locate(lines, ("connectors", "zzz")) is None


def test_secrets_inside_tables_are_known(tmp_path, registry):
    config = load(
        tmp_path,
        """
        [connectors.out]
        source = { type = "http.webhook", token = "abcd1234" }
        destination = { type = "webhook", url = "https://example.com/h",
                        headers = { "X-Api-Key" = "key-in-a-header" } }
    """.replace("\n                        headers", " headers"),
        registry,
    )
    assert "key-in-a-header" in config.secrets
