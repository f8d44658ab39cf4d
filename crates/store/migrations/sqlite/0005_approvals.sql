-- Requests for gated verbs, held until enough humans decide (SPEC §7).
-- Rows are kept after they finish: the history is part of the record,
-- and an owner's deprovisioning does not erase who asked for what.
CREATE TABLE approvals (
    id                 TEXT PRIMARY KEY,
    owner              TEXT NOT NULL,
    verb               TEXT NOT NULL,
    -- What deciders are shown (JSON); never a secret value.
    params             TEXT NOT NULL,
    -- SHA-256 of the verb and its exact parameters.
    params_digest      BLOB NOT NULL,
    -- A pending secret value, sealed under the owner's data key.
    sealed             BLOB,
    requester_cls      TEXT NOT NULL,
    requester_subject  TEXT NOT NULL,
    requester_jti      TEXT,
    requester_agent    TEXT,
    requester_job      TEXT,
    status             TEXT NOT NULL CHECK (status IN
        ('pending', 'approved', 'executed', 'failed', 'denied', 'expired')),
    required           INTEGER NOT NULL,
    created_at         INTEGER NOT NULL,
    expires_at         INTEGER NOT NULL,
    updated_at         INTEGER NOT NULL,
    -- The outcome: a JSON result, a sealed part only the requester reads
    -- (a minted token), or the reason it failed.
    result             TEXT,
    sealed_result      BLOB,
    error              TEXT
);
CREATE INDEX approvals_owner ON approvals (owner, status, created_at);
CREATE INDEX approvals_open ON approvals (status, expires_at);
CREATE INDEX approvals_requester ON approvals (requester_subject);

-- One row per human per approval: the primary key makes "each human
-- decides once" hold even under concurrent decisions.
CREATE TABLE approval_decisions (
    approval_id  TEXT NOT NULL REFERENCES approvals (id) ON DELETE CASCADE,
    decider      TEXT NOT NULL,
    decision     TEXT NOT NULL CHECK (decision IN ('approve', 'deny')),
    reason       TEXT NOT NULL,
    decided_at   INTEGER NOT NULL,
    PRIMARY KEY (approval_id, decider)
);
