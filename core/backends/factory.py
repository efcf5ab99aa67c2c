"""`backend_from_url`: the value of ``[daemon] state`` to a `StateBackend`.

Two kinds of value, never reinterpreted: an SQLite file (a path, or ``sqlite:///path``)
and a PostgreSQL URL (``postgresql://`` or ``postgres://``, the schemes libpq accepts:
https://www.postgresql.org/docs/15/libpq-connect.html#LIBPQ-CONNSTRING-URIS). Anything
else that looks like a URL is refused by name rather than created as a file called
``http:/host/...``. Messages show a URL only with its password hidden.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from connectord.errors import StateError

from . import StateBackend

_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*):")
_SQLITE = "sqlite:///"
_POSTGRES = ("postgresql://", "postgres://")
EXPECTED = "an SQLite state file (a path, or sqlite:///path) or a PostgreSQL URL (postgresql://...)"


def backend_from_url(
    state: str | os.PathLike[str],
    *,
    durability: str = "process",
    password_file: str | os.PathLike[str] | None = None,
    pool_size: int = 4,
) -> StateBackend:
    """The backend for ``state``; not opened yet. `StateError` names what was expected."""
    if isinstance(state, os.PathLike):
        return _sqlite(Path(state), durability)
    value = state.strip()
    if not value:
        raise StateError(f"[daemon] state is empty: expected {EXPECTED}")
    if value.startswith(_POSTGRES):
        return _postgres(value, password_file, pool_size)
    if value.startswith(_SQLITE):
        return _sqlite(_sqlite_path(value), durability)
    scheme = _SCHEME.match(value)
    if scheme and not _is_drive(value):
        raise StateError(
            f"[daemon] state: expected {EXPECTED}; found a {scheme.group(1)!r} URL "
            f"({_shown(value)})"
        )
    return _sqlite(Path(value).expanduser(), durability)


def _sqlite_path(url: str) -> Path:
    """``sqlite:///relative.db`` and ``sqlite:////absolute.db``, as SQLAlchemy spells them."""
    path = url[len(_SQLITE) :].split("?", 1)[0]
    if not path or path == ":memory:":
        raise StateError(
            f"[daemon] state: expected an SQLite file, found {url!r}: the state must be a "
            "file on disk (it is what makes accepted records durable)"
        )
    return Path(path)


def _sqlite(path: Path, durability: str) -> StateBackend:
    from .sqlite import SqliteBackend

    return SqliteBackend(path, durability=durability)


def _postgres(url: str, password_file: str | os.PathLike[str] | None, size: int) -> StateBackend:
    try:
        from .postgres import PostgresBackend
    except ImportError as err:  # psycopg is the optional "postgres" extra
        raise StateError(
            "[daemon] state is a PostgreSQL URL but psycopg is not installed: "
            "install connectord[postgres]"
        ) from err
    return PostgresBackend(url, password_file=password_file, pool_size=size)


def _is_drive(value: str) -> bool:
    r"""``C:\state.db`` or ``C:/state.db`` is a Windows path, not a URL with scheme c."""
    return len(value) > 2 and value[1] == ":" and value[2] in "\\/" and value[0].isalpha()


def _shown(value: str) -> str:
    """The value with user information and query (where passwords and tokens go) hidden."""
    value = re.sub(r"^([^:]+://)[^/?#@]*@", r"\1***@", value)
    return re.sub(r"\?.*$", "?***", value)


def is_postgres(value: str) -> bool:
    return value.strip().startswith(_POSTGRES)


def check_state_value(value: str) -> str:
    """Config validation of ``[daemon] state``: the value, or `ValueError` saying what
    was expected (a URL of another scheme is refused, never taken for a file name)."""
    value = value.strip()
    if not value:
        raise ValueError(f"expected {EXPECTED}, found an empty string")
    if is_postgres(value) or value.startswith(_SQLITE):
        if value.startswith(_SQLITE):
            try:
                _sqlite_path(value)
            except StateError as err:
                raise ValueError(str(err).removeprefix("[daemon] state: ")) from None
        return value
    scheme = _SCHEME.match(value)
    if scheme and not _is_drive(value):
        raise ValueError(f"expected {EXPECTED}; found a {scheme.group(1)!r} URL ({shown(value)})")
    return value


def sqlite_path(value: str) -> Path:
    """The file an SQLite ``state`` value names (a path or ``sqlite:///path``)."""
    value = value.strip()
    return _sqlite_path(value) if value.startswith(_SQLITE) else Path(value).expanduser()


def shown(value: str) -> str:
    """The state value with any password hidden, for logs and messages."""
    return _shown(value)
