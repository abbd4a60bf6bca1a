-- The dashboard's store, version 3: desired state, healing policies and
-- the reconciler's fleet-wide settings made through the API (those of the
-- servers file come from the file), restored at start; and the actions
-- under way, so a crash leaves a record of what it cut short.
--
-- kind: 'desired', 'healing' or 'reconciler'; scope_key: the scope as a
-- JSON array (["channel", SERVER, N], ["server", SERVER], ["tag", TAG],
-- or ["fleet"]); entry: the setting's wire view (DesiredSettingView,
-- HealingSettingView, or the reconciler's settings).
CREATE TABLE reconcile_settings (
    kind TEXT NOT NULL,
    scope_key TEXT NOT NULL,
    changed_at DOUBLE PRECISION NOT NULL,
    entry TEXT NOT NULL,
    PRIMARY KEY (kind, scope_key)
);

-- Actions under way: a row is added in the transaction of the audit entry
-- that opens an action (a request to act, a batch's or the reconciler's
-- action starting) and removed in that of the entry that ends it. Rows
-- left at start are actions a crash cut short: audited as interrupted.
CREATE TABLE open_actions (
    open_key TEXT PRIMARY KEY,
    opened_at DOUBLE PRECISION NOT NULL,
    entry TEXT NOT NULL
);
