-- An agent's egress policy (SPEC §6: allow lists on the job or the
-- agent): JSON array of host patterns every job of the agent is held to,
-- on top of the job's own list. NULL: no agent-wide policy.
ALTER TABLE agents ADD COLUMN allow_hosts TEXT;
