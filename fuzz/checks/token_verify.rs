//! Arbitrary text into the one token verifier, and small edits of tokens
//! it must accept, so the fuzzer starts next to valid tokens instead of
//! having to find the JWS shape, the header and a signature by chance.
//!
//! Invariants checked on every accepted token:
//! - it is byte for byte one of the tokens signed here: without the
//!   private key nothing else verifies, and a token has exactly one valid
//!   spelling (no malleable signature, no lax base64, no trimming);
//! - its owner is a canonical (trimmed, lower-case) email;
//! - its lifetime `exp - iat` is positive and within its class maximum.
//!
//! Input layout: the whole input is first tried as a token. Then byte 0
//! picks a seed token (bits 0-1) and an edit (bits 2-3: overwrite, insert,
//! replace the tail), bytes 1-2 a position in it (little-endian, modulo
//! its length), and the rest are the bytes written there.
//!
//! The fuzz target (`fuzz/fuzz_targets/token_verify.rs`) and the stable
//! regression test replaying `fuzz/corpus/token_verify/` both call [`run`].

use std::sync::OnceLock;

use ed25519_dalek::{SigningKey, VerifyingKey};
use gatehouse_domain::token::claims::{new_claims, Claims};
use gatehouse_domain::token::jws;
use gatehouse_domain::token::policy::class_maximum;
use gatehouse_domain::token::{
    verify_token, KeyLookup, RevocationView, TokenPolicy, ViewUnavailable,
};
use gatehouse_domain::{CredentialClass, Email, Role, Scope, ScopeSet};

const NOW: i64 = 1_800_000_000;
const KID: &str = "k1";

struct Keys(VerifyingKey);

impl KeyLookup for Keys {
    fn verifying_key(&self, kid: &str) -> Option<VerifyingKey> {
        (kid == KID).then_some(self.0)
    }
}

struct NoneRevoked;

impl RevocationView for NoneRevoked {
    fn is_revoked(&self, _: &Claims) -> Result<bool, ViewUnavailable> {
        Ok(false)
    }
}

struct Fixture {
    keys: Keys,
    policy: TokenPolicy,
    /// One valid token per credential class, all signed with the key.
    seeds: Vec<String>,
}

fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let key = SigningKey::from_bytes(&[7; 32]);
        let keys = Keys(key.verifying_key());
        let policy = TokenPolicy::default();
        let owner = Email::parse("Alice@Example.org").expect("fixed owner is valid");
        let seeds = CredentialClass::ALL
            .into_iter()
            .enumerate()
            .map(|(n, class)| {
                let scopes = match class {
                    CredentialClass::Job => ScopeSet::of(&[Scope::CredentialsRead]),
                    _ => ScopeSet::for_role(Role::Owner),
                };
                let mut claims = new_claims(
                    &policy,
                    class,
                    class.as_str(),
                    &owner,
                    scopes,
                    None,
                    NOW - 60,
                )
                .expect("class defaults are within the maximum");
                // A fixed jti keeps every run of the target deterministic.
                claims.jti = jws::b64(&[n as u8; 16]);
                let token = jws::sign(&claims, KID, &key);
                assert_eq!(
                    verify_token(&token, &keys, &NoneRevoked, &policy, NOW).as_ref(),
                    Ok(&claims),
                    "seed tokens must verify, or the fuzzer starts nowhere"
                );
                token
            })
            .collect();
        Fixture {
            keys,
            policy,
            seeds,
        }
    })
}

fn check(f: &Fixture, text: &str) {
    let Ok(claims) = verify_token(text, &f.keys, &NoneRevoked, &f.policy, NOW) else {
        return;
    };
    assert!(
        f.seeds.iter().any(|s| s == text),
        "accepted a token that was never signed: {text:?}"
    );
    assert!(
        Email::parse(&claims.owner).is_ok_and(|e| e.as_str() == claims.owner),
        "accepted a non-canonical owner {:?}",
        claims.owner
    );
    let lifetime = claims.exp.checked_sub(claims.iat);
    assert!(
        lifetime.is_some_and(|l| l > 0 && l <= class_maximum(claims.cls)),
        "accepted a {} token living {lifetime:?} s",
        claims.cls
    );
}

/// A seed token with the fuzz bytes written into it.
fn edited(f: &Fixture, data: &[u8]) -> Option<Vec<u8>> {
    let (&pick, rest) = data.split_first()?;
    let (position, bytes) = rest.split_first_chunk::<2>()?;
    let seed = f.seeds[usize::from(pick & 3) % f.seeds.len()].as_bytes();
    let at = usize::from(u16::from_le_bytes(*position)) % (seed.len() + 1);
    let mut out = seed.to_vec();
    match (pick >> 2) & 3 {
        0 => {
            let end = (at + bytes.len()).min(out.len());
            out.splice(at..end, bytes.iter().copied());
        }
        1 => {
            out.splice(at..at, bytes.iter().copied());
        }
        _ => {
            out.truncate(at);
            out.extend_from_slice(bytes);
        }
    }
    Some(out)
}

/// The target's check on one input: panics when an invariant breaks.
pub fn run(data: &[u8]) {
    let f = fixture();
    check(f, &String::from_utf8_lossy(data));
    if let Some(token) = edited(f, data) {
        check(f, &String::from_utf8_lossy(&token));
    }
}
