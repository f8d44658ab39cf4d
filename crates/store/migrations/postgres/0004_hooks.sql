-- Inbound webhooks: verified here, then forwarded to the owner's endpoint.
CREATE TABLE hooks (
    id           TEXT PRIMARY KEY,
    owner        TEXT NOT NULL REFERENCES owners (email) ON DELETE CASCADE,
    provider     TEXT NOT NULL,
    sealed       BYTEA NOT NULL,
    forward_to   TEXT NOT NULL,
    created_at   BIGINT NOT NULL
);
CREATE INDEX hooks_owner ON hooks (owner);

-- Deliveries already accepted, refused when replayed inside the window;
-- shared by every replica.
CREATE TABLE webhook_deliveries (
    replay_key   BYTEA PRIMARY KEY,
    expires_at   BIGINT NOT NULL
);
CREATE INDEX webhook_deliveries_expiry ON webhook_deliveries (expires_at);
