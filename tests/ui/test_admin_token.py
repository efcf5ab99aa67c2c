"""`[daemon] admin_token`: a secret like the others, also readable from a file."""

from __future__ import annotations

import pytest

from connectord.config import ConfigError, load_config


def config(tmp_path, daemon: str):
    path = tmp_path / "connectors.toml"
    path.write_text(f"[daemon]\n{daemon}\n", encoding="utf-8")
    return path


def test_token_from_a_file_is_a_secret(tmp_path, registry):
    (tmp_path / "token").write_text("from-a-file-0123456789\n")
    loaded = load_config(config(tmp_path, 'admin_token_file = "token"'), registry)
    assert loaded.daemon.admin_token.get_secret_value() == "from-a-file-0123456789"
    assert "from-a-file-0123456789" in loaded.secrets  # redacted from logs and pages
    assert "from-a-file" not in repr(loaded.daemon)


def test_token_inline_and_from_the_environment(tmp_path, registry):
    path = config(tmp_path, 'admin_token = "${ADMIN_TOKEN}"')
    loaded = load_config(path, registry, environ={"ADMIN_TOKEN": "from-the-env-0123"})
    assert loaded.daemon.admin_token.get_secret_value() == "from-the-env-0123"
    assert load_config(config(tmp_path, ""), registry).daemon.admin_token is None


def test_both_forms_at_once_is_an_error(tmp_path, registry):
    (tmp_path / "token").write_text("x" * 20)
    path = config(tmp_path, 'admin_token = "inline-token-value"\nadmin_token_file = "token"')
    with pytest.raises(ConfigError) as err:
        load_config(path, registry)
    assert "both admin_token and admin_token_file are set" in str(err.value)
    assert "inline-token-value" not in str(err.value)
