-- Owners (tenants), each with its own data key wrapped by the master key.
CREATE TABLE owners (
    email        TEXT PRIMARY KEY,
    role         TEXT NOT NULL CHECK (role IN ('operator', 'owner')),
    created_at   BIGINT NOT NULL,
    data_key     BLOB NOT NULL,
    master_kid   TEXT NOT NULL
);

-- The single bootstrap claim of this installation.
CREATE TABLE bootstrap (
    id           INTEGER PRIMARY KEY CHECK (id = 1),
    code_digest  BLOB,
    claimed_by   TEXT,
    claimed_at   BIGINT
);
INSERT INTO bootstrap (id) VALUES (1);

CREATE TABLE login_codes (
    email        TEXT PRIMARY KEY REFERENCES owners (email) ON DELETE CASCADE,
    code_digest  BLOB NOT NULL,
    expires_at   BIGINT NOT NULL
);

CREATE TABLE signing_keys (
    kid            TEXT PRIMARY KEY,
    public_key     BLOB NOT NULL,
    sealed_private BLOB NOT NULL,
    master_kid     TEXT NOT NULL,
    created_at     BIGINT NOT NULL,
    retired_at     BIGINT,
    verify_until   BIGINT
);

CREATE TABLE secrets (
    owner          TEXT NOT NULL REFERENCES owners (email) ON DELETE CASCADE,
    name           TEXT NOT NULL,
    sealed         BLOB NOT NULL,
    allowed_hosts  TEXT NOT NULL,
    inject         TEXT,
    created_at     BIGINT NOT NULL,
    updated_at     BIGINT NOT NULL,
    PRIMARY KEY (owner, name)
);

-- The audit chain head: writers serialise on this one row.
CREATE TABLE audit_head (
    id    INTEGER PRIMARY KEY CHECK (id = 1),
    seq   BIGINT NOT NULL,
    hash  TEXT NOT NULL
);
INSERT INTO audit_head (id, seq, hash)
VALUES (1, 0, '0000000000000000000000000000000000000000000000000000000000000000');

CREATE TABLE audit (
    seq         BIGINT PRIMARY KEY,
    ts          BIGINT NOT NULL,
    actor       TEXT NOT NULL,
    cls         TEXT NOT NULL,
    owner       TEXT NOT NULL,
    action      TEXT NOT NULL,
    target      TEXT NOT NULL,
    outcome     TEXT NOT NULL,
    request_id  TEXT NOT NULL,
    prev_hash   TEXT NOT NULL,
    hash        TEXT NOT NULL
);
CREATE INDEX audit_owner_seq ON audit (owner, seq);
