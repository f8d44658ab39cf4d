//! Egress target checks (SSRF defence). See SPEC §6.
