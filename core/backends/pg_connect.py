"""Connecting to PostgreSQL: where the password comes from, redaction, a small pool.

The password is looked up, first found wins, in: an explicit ``password_file`` (a
``*_file`` secret such as a systemd credential), the ``CONNECTORD_STATE_PASSWORD``
environment variable, the URL itself, and finally libpq's own sources (``PGPASSWORD``,
``PGPASSFILE`` or ``~/.pgpass``), which psycopg consults when no password is given.
A URL is only ever logged through `redacted_url`.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import psycopg
from psycopg import AsyncConnection
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from connectord.errors import StateError

from . import StateUnavailable

PASSWORD_ENV = "CONNECTORD_STATE_PASSWORD"  # noqa: S105 (a variable name)
HIDDEN = "***"
# libpq messages of a server that refuses us for good (as opposed to down or starting).
_REFUSED = ("authentication failed", "does not exist", "no pg_hba.conf entry")


def is_postgres_url(value: str) -> bool:
    return value.startswith(("postgresql://", "postgres://"))


def redacted_url(url: str) -> str:
    """The URL with any password (in the authority or a ``password=`` parameter) hidden."""
    if not is_postgres_url(url):
        try:
            params = conninfo_to_dict(url)
        except psycopg.ProgrammingError:
            return HIDDEN
        if "password" in params:
            params["password"] = HIDDEN
        return make_conninfo(**params)
    parts = urlsplit(url)
    netloc = parts.netloc
    if "@" in netloc:
        userinfo, host = netloc.rsplit("@", 1)
        if ":" in userinfo:
            netloc = f"{userinfo.split(':', 1)[0]}:{HIDDEN}@{host}"
    query = urlencode(
        [(k, HIDDEN if k == "password" else v) for k, v in parse_qsl(parts.query)], safe="*"
    )
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


def conninfo(
    url: str,
    *,
    password_file: str | os.PathLike[str] | None = None,
    environ: dict[str, str] | None = None,
    application_name: str = "connectord",
) -> str:
    """The libpq connection string for ``url`` with the password from the first source."""
    env = os.environ if environ is None else environ
    extra: dict[str, str] = {"application_name": application_name}
    if password_file is not None:
        try:
            extra["password"] = Path(password_file).read_text().rstrip("\r\n")
        except OSError as err:
            raise StateError(f"state password file {password_file}: {err.strerror}") from err
    elif env.get(PASSWORD_ENV):
        extra["password"] = env[PASSWORD_ENV]
    try:
        return make_conninfo(url, **extra)
    except psycopg.ProgrammingError as err:
        raise StateError(f"state URL {redacted_url(url)} is not valid: {err}") from err


class ConnectionPool:
    """A few autocommit connections, made on demand and replaced when broken.

    Why not psycopg_pool: the backend needs only this much, and one dependency fewer
    is one fewer thing to install on every node.
    """

    def __init__(self, dsn: str, size: int = 4, connect_timeout: float = 10.0) -> None:
        self._dsn = dsn
        self._slots = asyncio.Semaphore(size)
        self._idle: list[AsyncConnection] = []
        self._all: set[AsyncConnection] = set()
        self._timeout = connect_timeout
        self._closed = False

    async def _connect(self) -> AsyncConnection:
        try:
            conn = await AsyncConnection.connect(
                self._dsn, autocommit=True, connect_timeout=max(1, int(self._timeout))
            )
        except psycopg.OperationalError as err:
            message = f"cannot connect to the state database: {_first_line(err)}"
            if any(sign in str(err) for sign in _REFUSED):
                raise StateError(message) from err  # fix the configuration, not retry
            raise StateUnavailable(message) from err
        self._all.add(conn)
        return conn

    @contextlib.asynccontextmanager
    async def connection(self) -> AsyncIterator[AsyncConnection]:
        """Borrow a connection; a broken one is closed instead of returned."""
        if self._closed:
            raise StateError("the state database connection pool is closed")
        async with self._slots:
            conn = self._idle.pop() if self._idle else await self._connect()
            try:
                yield conn
            except psycopg.OperationalError as err:
                # A lost connection: the transaction did not commit. Callers see one
                # backend-neutral error and retry on a fresh connection.
                raise StateUnavailable(
                    f"the state database is unavailable: {_first_line(err)}"
                ) from err
            finally:
                if conn.closed or conn.broken or self._closed:
                    self._all.discard(conn)
                    await conn.close()
                else:
                    if conn.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:
                        await conn.rollback()
                    self._idle.append(conn)

    async def close(self) -> None:
        self._closed = True
        for conn in list(self._all):
            await conn.close()
        self._all.clear()
        self._idle.clear()


def _first_line(err: BaseException) -> str:
    return str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__


class PgAccess:
    """Shortcuts over a `ConnectionPool` for the backend's mixins."""

    _pool: ConnectionPool

    async def _rows(self, sql: str, params: object = None) -> list[tuple]:
        async with self._pool.connection() as conn:
            cursor = await conn.execute(sql, params)  # type: ignore[arg-type]
            return await cursor.fetchall()

    async def _row(self, sql: str, params: object = None) -> tuple | None:
        rows = await self._rows(sql, params)
        return rows[0] if rows else None

    async def _count(self, sql: str, params: object = None) -> int:
        """Run a write; the number of rows it changed."""
        async with self._pool.connection() as conn:
            cursor = await conn.execute(sql, params)  # type: ignore[arg-type]
            return cursor.rowcount
