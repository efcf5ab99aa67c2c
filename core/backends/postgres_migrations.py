"""Named, append-only migrations of the PostgreSQL state database.

Like the SQLite ones (`connectord.migrations`): never edit or reorder a released
migration, add a new one. Applied names are recorded in ``connectord_migrations``. Several
daemons may start at once: the whole migration runs in one transaction holding a
transaction-scoped advisory lock, so exactly one applies each migration and the others
wait, then find it recorded. (The advisory lock lives only for that transaction; leases
never use advisory locks.)
"""

from __future__ import annotations

from psycopg import AsyncConnection

# A constant key for pg_advisory_xact_lock: "connectd" in ASCII, as a signed 64-bit int.
MIGRATION_LOCK_KEY = int.from_bytes(b"connectd", "big", signed=True)

M001_INITIAL = """
-- The queue. Ids come from one identity sequence, so two transactions may commit them out
-- of order; every insert into the queue therefore first locks the connector's row in
-- queue_heads (FOR UPDATE, until commit): within one connector, ids become visible in
-- the order they were drawn, and a reader's `id > cursor` never passes a row that a
-- concurrent transaction could still commit.
CREATE TABLE queue (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    connector text NOT NULL,
    body bytea NOT NULL,
    enqueued_at double precision NOT NULL DEFAULT extract(epoch FROM now())
);
CREATE INDEX queue_connector_id ON queue (connector, id);
-- A queue table is all inserts and deletes: vacuum it early so dead rows do not pile up.
ALTER TABLE queue SET (
    autovacuum_vacuum_scale_factor = 0.01,
    autovacuum_vacuum_threshold = 1000,
    autovacuum_vacuum_insert_scale_factor = 0.05,
    autovacuum_analyze_scale_factor = 0.02
);

CREATE TABLE queue_heads (
    connector text PRIMARY KEY
);

CREATE TABLE dead_letters (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    connector text NOT NULL,
    record bytea NOT NULL,
    reason text NOT NULL,
    stage text NOT NULL,
    created_at double precision NOT NULL
);
CREATE INDEX dead_letters_connector_id ON dead_letters (connector, id);

CREATE TABLE checkpoints (
    connector text PRIMARY KEY,
    value text NOT NULL,
    updated_at double precision NOT NULL
);

CREATE TABLE runs (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    connector text NOT NULL,
    kind text NOT NULL,
    started_at double precision NOT NULL,
    ended_at double precision,
    status text NOT NULL,
    records_in bigint NOT NULL DEFAULT 0,
    records_out bigint NOT NULL DEFAULT 0,
    rejected bigint NOT NULL DEFAULT 0,
    error text
);
CREATE INDEX runs_connector_id ON runs (connector, id);

CREATE TABLE run_requests (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    connector text NOT NULL,
    full_refresh boolean NOT NULL DEFAULT false,
    requested_at double precision NOT NULL,
    taken_at double precision,
    run_id bigint
);
CREATE INDEX run_requests_pending ON run_requests (connector) WHERE taken_at IS NULL;

CREATE TABLE state (
    namespace text NOT NULL,
    key text NOT NULL,
    value text NOT NULL,
    updated_at double precision NOT NULL,
    PRIMARY KEY (namespace, key)
);

CREATE TABLE counters (
    connector text PRIMARY KEY,
    received bigint NOT NULL DEFAULT 0,
    delivered bigint NOT NULL DEFAULT 0,
    rejected bigint NOT NULL DEFAULT 0,
    last_received_at double precision,
    last_delivered_at double precision
);

-- Leases: rows on the database's clock, never advisory locks (a paused holder would keep
-- one forever, and transaction pooling breaks them). Rows are never deleted, so an epoch
-- never goes back.
CREATE TABLE leases (
    name text PRIMARY KEY,
    holder text NOT NULL,
    epoch bigint NOT NULL,
    acquired_at timestamptz NOT NULL,
    expires_at timestamptz NOT NULL
);

CREATE TABLE nodes (
    node text PRIMARY KEY,
    first_seen_at timestamptz NOT NULL,
    seen_at timestamptz NOT NULL,
    expires_at timestamptz NOT NULL
);
"""

MIGRATIONS: list[tuple[str, str]] = [("m001_initial", M001_INITIAL)]


async def apply(
    conn: AsyncConnection, migrations: list[tuple[str, str]] | None = None
) -> list[str]:
    """Apply the migrations not yet recorded, in order; the names applied now."""
    done: list[str] = []
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock(%s)", [MIGRATION_LOCK_KEY])
        await conn.execute(
            "CREATE TABLE IF NOT EXISTS connectord_migrations ("
            "name text PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())"
        )
        cursor = await conn.execute("SELECT name FROM connectord_migrations")
        applied = {row[0] for row in await cursor.fetchall()}
        for name, sql in MIGRATIONS if migrations is None else migrations:
            if name in applied:
                continue
            await conn.execute(sql)  # type: ignore[arg-type]
            await conn.execute("INSERT INTO connectord_migrations (name) VALUES (%s)", [name])
            done.append(name)
    return done
