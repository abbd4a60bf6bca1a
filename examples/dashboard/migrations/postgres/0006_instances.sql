-- The dashboard's store, version 6: several instances sharing one fleet.
-- Every time here is the database's clock (now()), never an instance's.

-- The instances alive: each upserts its row (heartbeat_at = now()) every
-- heartbeat and deletes it on a clean shutdown. advertise: where the
-- others reach it.
CREATE TABLE instances (
    id TEXT PRIMARY KEY,
    advertise TEXT NOT NULL,
    started_at TIMESTAMPTZ NOT NULL,
    heartbeat_at TIMESTAMPTZ NOT NULL
);

-- One lease per shard of the fleet (rows 0..N, made by the first instance
-- to start). epoch: bumped by every claim, never by a renew or a release;
-- a holder's writes carry the epoch it holds, and a stale one's are
-- refused (fencing). owner NULL: free; expires_at <= now(): free to claim.
CREATE TABLE shard_leases (
    shard INTEGER PRIMARY KEY,
    owner TEXT,
    epoch BIGINT NOT NULL DEFAULT 0,
    expires_at TIMESTAMPTZ
);

-- Each server's state as its shard's owner last wrote it (entry: the
-- server's view, JSON), with the shard and epoch it was written under.
-- version: from server_state_version, taken under a transaction-wide lock
-- so versions become visible in their order; the others read the rows
-- past the last version they saw, on a notification on 'ipvtl_state'.
CREATE SEQUENCE server_state_version AS BIGINT;
CREATE TABLE server_state (
    server_id TEXT PRIMARY KEY,
    shard INTEGER NOT NULL,
    owner TEXT NOT NULL,
    epoch BIGINT NOT NULL,
    version BIGINT NOT NULL,
    entry TEXT NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL
);
CREATE INDEX server_state_by_version ON server_state (version);

-- Per-channel locks held across instances: holder, the instance; token,
-- the one holding action's (only it may extend or release the lock).
CREATE TABLE channel_locks (
    server_id TEXT NOT NULL,
    channel BIGINT NOT NULL,
    holder TEXT NOT NULL,
    token TEXT NOT NULL,
    expires_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (server_id, channel)
);

-- Batch numbers handed out to every instance from one counter, so two
-- instances never number two batches alike: the last number given (at
-- least the highest batch kept).
CREATE TABLE batch_numbers (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    last BIGINT NOT NULL
);

-- The servers file reloaded through one instance: the others reload
-- theirs when the generation moves.
CREATE TABLE fleet_reloads (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    generation BIGINT NOT NULL,
    instance TEXT NOT NULL
);

-- The instance whose sender delivers an outbox row (the one that wrote
-- it; the leader takes over the rows of an instance gone). NULL: written
-- by a dashboard running alone.
ALTER TABLE alert_outbox ADD COLUMN instance TEXT;

-- Each instance keeps its own active alerts (it evaluates the whole fleet
-- and replaces its rows as a whole): the instance is part of the key
-- ('' for a dashboard alone).
CREATE TABLE alert_state_v6 (
    instance TEXT NOT NULL DEFAULT '',
    fingerprint TEXT NOT NULL,
    entry TEXT NOT NULL,
    PRIMARY KEY (instance, fingerprint)
);
INSERT INTO alert_state_v6 (fingerprint, entry) SELECT fingerprint, entry FROM alert_state;
DROP TABLE alert_state;
ALTER TABLE alert_state_v6 RENAME TO alert_state;
