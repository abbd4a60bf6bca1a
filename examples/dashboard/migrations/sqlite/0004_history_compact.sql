-- The dashboard's store, version 4 (SQLite): compact history. Servers are
-- numbered once (history_servers); a point holds integers only, keyed by
-- step, bucket and server, so the rows of one bucket are written together
-- at the end of the tree and pruned together at its start, and no index
-- besides the key is needed (WITHOUT ROWID: the key is the table).
--
-- step: 10 or 60 (seconds); at: the bucket's start, Unix seconds;
-- cpu_tenths / cpu_n: the mean cpu average in tenths of a percent
-- (cpu_n = 0: no cpu figure); running_channels and health (0 unknown,
-- 1 online, 2 offline, 3 error): the bucket's last poll.
CREATE TABLE history_servers (
    id INTEGER PRIMARY KEY,
    server_id TEXT NOT NULL UNIQUE
);

INSERT INTO history_servers (server_id) SELECT DISTINCT server_id FROM history ORDER BY server_id;

CREATE TABLE history_points (
    step INTEGER NOT NULL,
    at INTEGER NOT NULL,
    server INTEGER NOT NULL,
    cpu_tenths INTEGER NOT NULL,
    cpu_n INTEGER NOT NULL,
    running_channels INTEGER NOT NULL,
    health INTEGER NOT NULL,
    PRIMARY KEY (step, at, server)
) WITHOUT ROWID;

INSERT INTO history_points (step, at, server, cpu_tenths, cpu_n, running_channels, health)
SELECT h.step, h.at, s.id, CAST(ROUND(h.cpu_sum * 10) AS INTEGER), h.cpu_n, h.running_channels,
       CASE h.health WHEN 'online' THEN 1 WHEN 'offline' THEN 2 WHEN 'error' THEN 3 ELSE 0 END
FROM history h JOIN history_servers s ON s.server_id = h.server_id;

DROP TABLE history;
ALTER TABLE history_points RENAME TO history;
