-- The egress CA of the installation (SPEC §6), shared by every replica.
-- One row per generation: the newest one not retired signs leaves; a
-- retired one stays in the served bundle until `trust_until`. The private
-- key is sealed under the master key (purpose `egress-ca-key`, context
-- generation + certificate digest). `cross_pem`: this CA's certificate
-- signed by the previous generation, so clients holding only the old
-- bundle still verify new leaves while the old CA is trusted.
CREATE TABLE egress_cas (
    generation  INTEGER PRIMARY KEY,
    cert_pem    TEXT NOT NULL,
    cross_pem   TEXT,
    sealed_key  BLOB NOT NULL,
    master_kid  TEXT NOT NULL,
    created_at  INTEGER NOT NULL,
    retired_at  INTEGER,
    trust_until INTEGER
);
