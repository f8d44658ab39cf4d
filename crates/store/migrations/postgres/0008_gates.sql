-- An agent's secret ceiling (SPEC §4): JSON array of the secret names
-- jobs created by that agent's own credentials may be granted. NULL: none.
ALTER TABLE agents ADD COLUMN secrets TEXT;

-- `executing` (SPEC §7): an approved request that calls out to another
-- system is claimed first, so the outside call happens at most once.
ALTER TABLE approvals DROP CONSTRAINT approvals_status_check;
ALTER TABLE approvals ADD CONSTRAINT approvals_status_check CHECK (status IN
    ('pending', 'approved', 'executing', 'executed', 'failed', 'denied', 'expired'));
