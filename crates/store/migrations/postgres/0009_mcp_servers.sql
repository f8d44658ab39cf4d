-- Upstream MCP servers an owner registers for the gateway (SPEC §13):
-- agents reach them at /mcp/{name}. `auth` is JSON {secret, header,
-- format} naming one of the owner's secrets (never a value); `tools` is
-- JSON {allow, gated} of tool-name globs. Saved only through the gate
-- (`policy.change`); gone with the owner.
CREATE TABLE mcp_servers (
    owner        TEXT NOT NULL REFERENCES owners (email) ON DELETE CASCADE,
    name         TEXT NOT NULL,
    url          TEXT NOT NULL,
    auth         TEXT,
    tools        TEXT NOT NULL,
    created_at   BIGINT NOT NULL,
    updated_at   BIGINT NOT NULL,
    PRIMARY KEY (owner, name)
);
