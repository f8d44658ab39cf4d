-- Agents: named non-human actors, each working for one owner.
CREATE TABLE agents (
    owner       TEXT NOT NULL REFERENCES owners (email) ON DELETE CASCADE,
    name        TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    PRIMARY KEY (owner, name)
);

-- Every token Gatehouse issued (never its value), for listing and for
-- revoking by jti with the token's own expiry.
CREATE TABLE issued_tokens (
    jti         TEXT PRIMARY KEY,
    owner       TEXT NOT NULL,
    subject     TEXT NOT NULL,
    cls         TEXT NOT NULL,
    scope       TEXT NOT NULL,
    iat         BIGINT NOT NULL,
    exp         BIGINT NOT NULL
);
CREATE INDEX issued_tokens_owner ON issued_tokens (owner, exp);

-- Revocations: single tokens (kind 'jti') and not-before watermarks for a
-- subject or a whole owner. `id` orders them for incremental sync; rows
-- are swept once `expires_at` has passed.
CREATE TABLE revocations (
    id          BIGSERIAL PRIMARY KEY,
    kind        TEXT NOT NULL CHECK (kind IN ('jti', 'subject', 'owner')),
    owner       TEXT NOT NULL,
    subject     TEXT NOT NULL,
    jti         TEXT NOT NULL,
    not_before  BIGINT NOT NULL,
    expires_at  BIGINT NOT NULL,
    created_at  BIGINT NOT NULL
);
CREATE INDEX revocations_expiry ON revocations (expires_at);
