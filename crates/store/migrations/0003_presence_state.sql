-- Presence agent state that survives a restart (RFC 3903 publications, RFC 6665
-- subscriptions): one row per publication or subscription, its content encoded by the
-- presence crate. Rows past expires_at are dead and purged on load.
CREATE TABLE presence_state (
    kind        TEXT    NOT NULL,
    key         TEXT    NOT NULL,
    expires_at  INTEGER NOT NULL,
    data        BLOB    NOT NULL,
    PRIMARY KEY (kind, key)
) WITHOUT ROWID;
