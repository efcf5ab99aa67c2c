"""Where the password comes from, and that no URL with a password is ever logged.

The session's server may trust 127.0.0.1, so real password checks run against a
throwaway server of our own with SCRAM authentication.
"""

from __future__ import annotations

from collections.abc import Iterator

import psycopg
import pytest
from structlog.testing import capture_logs

from connectord.backends.pg_connect import PASSWORD_ENV, conninfo, redacted_url
from connectord.backends.postgres import PostgresBackend
from connectord.errors import StateError
from tests.backends.pgserver import ThrowawayPostgres, answers, ensure_server, free_port

SECRET = "s3cret-Pa55"


def test_redacted_url_hides_every_password():
    assert (
        redacted_url(f"postgresql://connectord:{SECRET}@db:5432/connectord")
        == "postgresql://connectord:***@db:5432/connectord"
    )
    assert redacted_url("postgresql://connectord@db/connectord") == (
        "postgresql://connectord@db/connectord"
    )
    shown = redacted_url(f"postgresql://db/c?user=u&password={SECRET}&sslmode=require")
    assert SECRET not in shown and "password=***" in shown and "sslmode=require" in shown
    shown = redacted_url(f"host=db user=u password={SECRET} dbname=c")
    assert SECRET not in shown and "host=db" in shown
    assert redacted_url("not a conninfo = = =") == "***"


def test_password_sources_in_order(tmp_path):
    secret_file = tmp_path / "state_password"
    secret_file.write_text("from-file\n")
    url = "postgresql://u:from-url@db/c"
    assert "password=from-file" in conninfo(url, password_file=secret_file, environ={})
    env = {PASSWORD_ENV: "from-env"}
    assert "password=from-env" in conninfo(url, environ=env)
    assert "password=from-url" in conninfo(url, environ={})
    assert "password" not in conninfo("postgresql://u@db/c", environ={})  # libpq's turn
    with pytest.raises(StateError) as err:
        conninfo(url, password_file=tmp_path / "missing", environ={})
    assert "from-url" not in str(err.value)


@pytest.fixture(scope="module")
def scram_server() -> Iterator[ThrowawayPostgres]:
    server = ThrowawayPostgres(password=SECRET).start()
    try:
        yield server
    finally:
        server.stop()


def url_without_password(server: ThrowawayPostgres) -> str:
    return f"postgresql://postgres@127.0.0.1:{server.port}/postgres"


async def test_each_password_source_logs_in(scram_server, tmp_path, monkeypatch):
    bare = url_without_password(scram_server)
    secret_file = tmp_path / "pw"
    secret_file.write_text(SECRET + "\n")
    pgpass = tmp_path / "pgpass"
    pgpass.write_text(f"127.0.0.1:{scram_server.port}:*:postgres:{SECRET}\n")
    pgpass.chmod(0o600)
    monkeypatch.delenv("PGPASSWORD", raising=False)
    monkeypatch.setenv("PGPASSFILE", str(tmp_path / "none"))
    attempts = [
        ({"url": scram_server.admin_url}, {}),
        ({"url": bare, "password_file": secret_file}, {}),
        ({"url": bare}, {PASSWORD_ENV: SECRET}),
        ({"url": bare}, {"PGPASSFILE": str(pgpass)}),
    ]
    for kwargs, env in attempts:
        with monkeypatch.context() as patch:
            for key, value in env.items():
                patch.setenv(key, value)
            store = PostgresBackend(**kwargs)
            await store.open()
            await store.enqueue_many([("c", [b"{}"])])
            await store.close()


async def test_a_wrong_password_fails_clearly_and_nothing_logs_it(scram_server, monkeypatch):
    monkeypatch.delenv("PGPASSWORD", raising=False)
    monkeypatch.delenv(PASSWORD_ENV, raising=False)
    good = PostgresBackend(scram_server.admin_url)
    with capture_logs() as logs:
        await good.open()
        await good.close()
    assert logs and all(SECRET not in repr(entry) for entry in logs)
    assert any(entry["url"] == redacted_url(scram_server.admin_url) for entry in logs)
    wrong = PostgresBackend(scram_server.admin_url.replace(SECRET, "wrong-" + SECRET))
    with pytest.raises(StateError) as err:
        await wrong.open()
    assert "password authentication failed" in str(err.value)
    assert SECRET not in str(err.value)
    await wrong.close()


def test_a_throwaway_server_starts_when_none_answers():
    closed = f"postgresql://postgres@127.0.0.1:{free_port()}/postgres"
    assert not answers(closed)
    with ensure_server(closed) as url:
        assert url != closed
        with psycopg.connect(url) as conn:
            assert conn.execute("SELECT 1").fetchone() == (1,)
    assert not answers(url)  # stopped and removed afterwards
