-- The dashboard's store, version 5: alerts. What the evaluator tracks is
-- kept so an alert that fired is not fired again after a restart and gets
-- its resolve; silences made through the API (those of the alerts file
-- come from the file); and the notification outbox.

-- Active alerts (pending, firing or silenced), replaced as a whole in the
-- transaction that adds their notifications to the outbox. entry: the
-- alert's view (rule, labels, annotations, state and times in Unix
-- seconds).
CREATE TABLE alert_state (
    fingerprint TEXT PRIMARY KEY,
    entry TEXT NOT NULL
);

-- Silences made through the API, by the evaluator's id; ends_at in Unix
-- seconds. Rows of ended silences are removed at start.
CREATE TABLE alert_silences (
    silence_id BIGINT PRIMARY KEY,
    ends_at DOUBLE PRECISION NOT NULL,
    entry TEXT NOT NULL
);

-- The outbox: one row per notification and receiver, added when the
-- notification is produced. A sender delivers due rows in id order per
-- receiver: delivered_at set on an acknowledgment (2xx), else attempts
-- counted and next_at moved back; failed_at set when the receiver refuses
-- it for good (a 4xx other than 408 and 429). payload: the notification's
-- view; the receiver's body is made from it when sent.
CREATE TABLE alert_outbox (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    notification_id TEXT NOT NULL,
    receiver TEXT NOT NULL,
    fingerprint TEXT NOT NULL,
    kind TEXT NOT NULL,
    payload TEXT NOT NULL,
    created_at DOUBLE PRECISION NOT NULL,
    attempts BIGINT NOT NULL DEFAULT 0,
    next_at DOUBLE PRECISION NOT NULL,
    delivered_at DOUBLE PRECISION,
    failed_at DOUBLE PRECISION,
    last_error TEXT,
    UNIQUE (notification_id, receiver)
);
CREATE INDEX alert_outbox_due ON alert_outbox (receiver, id) WHERE delivered_at IS NULL AND failed_at IS NULL;
