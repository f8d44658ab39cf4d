-- An agent's secret ceiling (SPEC §4): JSON array of the secret names
-- jobs created by that agent's own credentials may be granted. NULL: none.
ALTER TABLE agents ADD COLUMN secrets TEXT;

-- `executing` (SPEC §7): an approved request that calls out to another
-- system is claimed first, so the outside call happens at most once.
-- SQLite cannot change a CHECK constraint in place: the table is rebuilt.
-- Foreign keys are on, so the decisions are set aside first (dropping a
-- parent table would cascade into them) and restored after.
CREATE TABLE approvals_next (
    id                 TEXT PRIMARY KEY,
    owner              TEXT NOT NULL,
    verb               TEXT NOT NULL,
    params             TEXT NOT NULL,
    params_digest      BLOB NOT NULL,
    sealed             BLOB,
    requester_cls      TEXT NOT NULL,
    requester_subject  TEXT NOT NULL,
    requester_jti      TEXT,
    requester_agent    TEXT,
    requester_job      TEXT,
    status             TEXT NOT NULL CHECK (status IN
        ('pending', 'approved', 'executing', 'executed', 'failed', 'denied', 'expired')),
    required           INTEGER NOT NULL,
    created_at         INTEGER NOT NULL,
    expires_at         INTEGER NOT NULL,
    updated_at         INTEGER NOT NULL,
    result             TEXT,
    sealed_result      BLOB,
    error              TEXT
);
INSERT INTO approvals_next SELECT id, owner, verb, params, params_digest, sealed, requester_cls,
    requester_subject, requester_jti, requester_agent, requester_job, status, required, created_at,
    expires_at, updated_at, result, sealed_result, error FROM approvals;
CREATE TABLE approval_decisions_kept AS SELECT * FROM approval_decisions;
DROP TABLE approval_decisions;
DROP TABLE approvals;
ALTER TABLE approvals_next RENAME TO approvals;
CREATE INDEX approvals_owner ON approvals (owner, status, created_at);
CREATE INDEX approvals_open ON approvals (status, expires_at);
CREATE INDEX approvals_requester ON approvals (requester_subject);
CREATE TABLE approval_decisions (
    approval_id  TEXT NOT NULL REFERENCES approvals (id) ON DELETE CASCADE,
    decider      TEXT NOT NULL,
    decision     TEXT NOT NULL CHECK (decision IN ('approve', 'deny')),
    reason       TEXT NOT NULL,
    decided_at   INTEGER NOT NULL,
    PRIMARY KEY (approval_id, decider)
);
INSERT INTO approval_decisions SELECT approval_id, decider, decision, reason, decided_at
    FROM approval_decisions_kept;
DROP TABLE approval_decisions_kept;
