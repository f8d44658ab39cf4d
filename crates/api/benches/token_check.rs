//! Token check cost against a bare Ed25519 verify of the same bytes,
//! measured in the same run. `cargo bench -p gatehouse-api --bench token_check`
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;
use common::measure_named as measure;

use std::hint::black_box;
use std::sync::Arc;
use std::time::Duration;

use ed25519_dalek::{SigningKey, VerifyingKey};
use gatehouse_api::revocation::Revocations;
use gatehouse_api::token_cache::TokenCache;
use gatehouse_domain::clock::ManualClock;
use gatehouse_domain::token::claims::new_claims;
use gatehouse_domain::token::jws::{self, sign};
use gatehouse_domain::token::{
    verify_token, verify_token_cached, KeyLookup, RevocationView, TokenPolicy,
};
use gatehouse_domain::{CredentialClass, Email, Role, ScopeSet};
use gatehouse_store::{Revocation, RevocationKind};

const NOW: i64 = 1_800_000_000;

struct OneKey(VerifyingKey);
impl KeyLookup for OneKey {
    fn verifying_key(&self, kid: &str) -> Option<VerifyingKey> {
        (kid == "k1").then_some(self.0)
    }
}

fn resident_bytes() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    statm
        .split_whitespace()
        .nth(1)
        .and_then(|p| p.parse::<u64>().ok())
        .unwrap_or(0)
        * 4096
}

fn revoke_many(view: &Revocations, n: usize) {
    for i in 0..n {
        let jti = jws::b64(&(i as u128).to_be_bytes());
        view.apply(&Revocation {
            id: i as i64 + 1,
            kind: RevocationKind::Jti { jti },
            not_before: 0,
            expires_at: NOW + 900,
        });
    }
}

fn main() {
    let key = SigningKey::from_bytes(&gatehouse_domain::codes::random_array());
    let keys = OneKey(key.verifying_key());
    let policy = TokenPolicy::default();
    let owner = Email::parse("alice@example.org").unwrap();
    let claims = new_claims(
        &policy,
        CredentialClass::Agent,
        "claude",
        &owner,
        ScopeSet::for_role(Role::Owner),
        None,
        NOW,
    )
    .unwrap();
    let token = sign(&claims, "k1", &key);
    let parsed = jws::split(&token).unwrap();
    println!(
        "token: {} bytes; signed input {} bytes",
        token.len(),
        parsed.signing_input.len()
    );

    let empty = Revocations::new(Duration::from_secs(3600));
    empty.mark_confirmed();
    let full = Revocations::new(Duration::from_secs(3600));
    let before = resident_bytes();
    revoke_many(&full, 1_000_000);
    let after = resident_bytes();
    full.mark_confirmed();

    let bare = measure("bare ed25519 verify_strict (baseline)", 20_000, || {
        black_box(
            keys.0
                .verify_strict(black_box(parsed.signing_input), &parsed.signature),
        )
        .unwrap();
    });
    let cold = measure(
        "cold check: parse+verify+claims+revocation (1M revoked)",
        20_000,
        || {
            black_box(verify_token(black_box(&token), &keys, &full, &policy, NOW)).unwrap();
        },
    );
    let cache = TokenCache::new(100_000, Arc::new(ManualClock::new(NOW)));
    verify_token_cached(&token, &keys, &full, &cache, &policy, NOW).unwrap();
    let warm = measure(
        "warm check: cache hit + time + revocation (1M revoked)",
        200_000,
        || {
            black_box(verify_token_cached(
                black_box(&token),
                &keys,
                &full,
                &cache,
                &policy,
                NOW,
            ))
            .unwrap();
        },
    );
    let lookup_empty = measure("revocation lookup, 0 revoked", 1_000_000, || {
        black_box(empty.is_revoked(black_box(&claims))).unwrap();
    });
    let lookup_full = measure("revocation lookup, 1,000,000 revoked", 1_000_000, || {
        black_box(full.is_revoked(black_box(&claims))).unwrap();
    });
    println!();
    println!(
        "cold / bare verify           = {:.3}x (target <= 1.10x)",
        cold / bare
    );
    println!(
        "warm / bare verify           = {:.3}x (target <= 0.03x), {:.0} ns (target <= 1000 ns)",
        warm / bare,
        warm
    );
    println!(
        "lookup 1M / lookup empty     = {:.2}x (flat means ~1x)",
        lookup_full / lookup_empty
    );
    println!(
        "memory for 1,000,000 revoked jtis: {:.1} MiB ({:.0} bytes each)",
        (after.saturating_sub(before)) as f64 / (1024.0 * 1024.0),
        (after.saturating_sub(before)) as f64 / 1_000_000.0
    );
}
