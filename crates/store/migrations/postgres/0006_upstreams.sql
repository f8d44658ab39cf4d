-- Upstream credentials (SPEC §8). One row per configured upstream that
-- has been bootstrapped: the token in use and, during a rotation, the
-- freshly minted one not yet switched to. Values are sealed under the
-- owner's data key (purpose upstream-token, context owner, upstream,
-- token id); ids and times are plain.
CREATE TABLE upstream_state (
    name                TEXT PRIMARY KEY,
    owner               TEXT NOT NULL REFERENCES owners (email) ON DELETE CASCADE,
    current_id          TEXT,
    current_sealed      BYTEA,
    current_expires_at  BIGINT,
    last_rotation       BIGINT,
    pending_id          TEXT,
    pending_sealed      BYTEA,
    pending_expires_at  BIGINT,
    updated_at          BIGINT NOT NULL
);

-- Every upstream token Gatehouse minted or was handed (ids only, never
-- values), with where it is in its life: 'pending' (minted, not yet in
-- use), 'current', 'pending_revoke' (to be revoked; retried with
-- backoff), 'revoked', 'expired' (lapsed before a revoke succeeded).
CREATE TABLE upstream_tokens (
    upstream         TEXT NOT NULL,
    token_id         TEXT NOT NULL,
    origin           TEXT NOT NULL CHECK (origin IN ('pasted', 'minted')),
    state            TEXT NOT NULL CHECK (state IN ('pending', 'current', 'pending_revoke', 'revoked', 'expired')),
    attempts         BIGINT NOT NULL,
    next_attempt_at  BIGINT,
    last_error       TEXT,
    created_at       BIGINT NOT NULL,
    expires_at       BIGINT,
    PRIMARY KEY (upstream, token_id)
);
CREATE INDEX upstream_tokens_state ON upstream_tokens (upstream, state);
