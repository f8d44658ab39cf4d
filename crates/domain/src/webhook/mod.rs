//! Inbound webhook signature verification. See SPEC §9.
