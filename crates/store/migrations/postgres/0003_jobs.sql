-- Jobs: one sandboxed run of an agent, owned by its creator's owner.
CREATE TABLE jobs (
    id           TEXT PRIMARY KEY,
    owner        TEXT NOT NULL REFERENCES owners (email) ON DELETE CASCADE,
    agent        TEXT NOT NULL,
    created_by   TEXT NOT NULL,
    token_jti    TEXT NOT NULL,
    packages     TEXT NOT NULL,
    allow_hosts  TEXT NOT NULL,
    -- How many grants the job was created with: a grant row that later
    -- goes missing is then noticed, not read as "no grants".
    grant_count  BIGINT NOT NULL,
    created_at   BIGINT NOT NULL,
    expires_at   BIGINT NOT NULL,
    deleted_at   BIGINT
);
CREATE INDEX jobs_owner ON jobs (owner, created_at);
CREATE INDEX jobs_agent ON jobs (owner, agent);

-- What each job may receive: a secret of its owner, as a placeholder or
-- as the value, under an environment variable name.
CREATE TABLE job_grants (
    job_id   TEXT NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
    env_var  TEXT NOT NULL,
    secret   TEXT NOT NULL,
    mode     TEXT NOT NULL CHECK (mode IN ('placeholder', 'value')),
    PRIMARY KEY (job_id, env_var)
);

-- Random stand-ins for secret values, bound to (owner, job, secret, hosts).
CREATE TABLE placeholders (
    placeholder    TEXT PRIMARY KEY,
    owner          TEXT NOT NULL,
    job_id         TEXT NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
    secret         TEXT NOT NULL,
    allowed_hosts  TEXT NOT NULL,
    expires_at     BIGINT NOT NULL
);
CREATE INDEX placeholders_job ON placeholders (job_id);
