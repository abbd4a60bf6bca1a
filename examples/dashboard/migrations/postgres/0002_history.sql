-- The dashboard's store, version 2 (PostgreSQL): downsampled history. One row per
-- server, step (seconds: 10 or 60) and bucket (`at`, Unix seconds, the
-- start of the bucket). The cpu average over the bucket is
-- cpu_sum / cpu_n (cpu_n = 0: no cpu figure); running_channels and health
-- are the bucket's last sample.
CREATE TABLE history (
    server_id TEXT NOT NULL,
    step BIGINT NOT NULL,
    at BIGINT NOT NULL,
    cpu_sum DOUBLE PRECISION NOT NULL,
    cpu_n BIGINT NOT NULL,
    running_channels BIGINT NOT NULL,
    health TEXT NOT NULL,
    PRIMARY KEY (server_id, step, at)
);

-- Pruning by age, per step.
CREATE INDEX history_by_age ON history (step, at);
