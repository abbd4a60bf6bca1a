-- The dashboard's store, version 1 (SQLite). Rows hold the wire views'
-- JSON (`entry`); the other columns are what is looked up or ordered by.

-- Every request to act, its outcome, and who asked, in order.
CREATE TABLE audit (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    at DOUBLE PRECISION NOT NULL,
    event TEXT NOT NULL,
    key_name TEXT,
    entry TEXT NOT NULL
);

-- Batches with their progress and final report.
CREATE TABLE batches (
    batch_id BIGINT PRIMARY KEY,
    state TEXT NOT NULL,
    created_at DOUBLE PRECISION NOT NULL,
    entry TEXT NOT NULL
);

-- Maintenance flags by server id, restored at start.
CREATE TABLE maintenance (
    server_id TEXT PRIMARY KEY,
    enabled BOOLEAN NOT NULL,
    changed_at DOUBLE PRECISION NOT NULL
);

-- API keys: a name, a role, and the SHA-256 of the token (never the token).
CREATE TABLE api_keys (
    name TEXT PRIMARY KEY,
    role TEXT NOT NULL,
    key_hash TEXT NOT NULL UNIQUE,
    created_at DOUBLE PRECISION NOT NULL
);
