-- Accounts: digest HA1 values only, never passwords (RFC 7616 §3.4.2, §5.2).
CREATE TABLE accounts (
    user        TEXT    NOT NULL,
    domain      TEXT    NOT NULL,
    ha1_md5     TEXT    NOT NULL,
    ha1_sha256  TEXT    NOT NULL,
    created_at  INTEGER NOT NULL,
    PRIMARY KEY (user, domain)
) WITHOUT ROWID;

-- Registrar bindings (RFC 3261 §10.3), one row per contact. Lists are newline-separated
-- text: header values cannot contain line breaks.
CREATE TABLE bindings (
    aor         TEXT    NOT NULL,
    position    INTEGER NOT NULL,
    contact     TEXT    NOT NULL,
    instance    TEXT,
    q           REAL,
    call_id     TEXT    NOT NULL,
    cseq        INTEGER NOT NULL,
    expires_at  INTEGER NOT NULL,
    path        TEXT    NOT NULL,
    transport   TEXT    NOT NULL,
    source      TEXT    NOT NULL,
    user_agent  TEXT,
    temp_gruus  TEXT    NOT NULL,
    PRIMARY KEY (aor, position)
) WITHOUT ROWID;

CREATE INDEX bindings_by_expiry ON bindings (expires_at);

-- Server secrets (nonce and GRUU HMAC keys) that must survive restarts.
CREATE TABLE settings (
    name   TEXT PRIMARY KEY,
    value  BLOB NOT NULL
) WITHOUT ROWID;
