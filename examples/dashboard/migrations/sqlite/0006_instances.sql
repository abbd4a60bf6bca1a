-- The dashboard's store, version 6: several instances sharing one fleet.
-- Only a PostgreSQL store holds them (shard leases, the owners' server
-- states, channel locks across instances, one batch counter: see the
-- postgres dialect's 0006_instances.sql); here only what the queries of
-- both dialects name: the outbox's column naming the instance that
-- delivers a row (always NULL on SQLite: one dashboard alone) and the
-- instance in the active alerts' key.
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
