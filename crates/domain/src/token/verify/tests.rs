use super::*;
use crate::email::Email;
use crate::principal::{CredentialClass, Role, ScopeSet};
use crate::token::claims::new_claims;
use crate::token::jws::{b64, sign};
use ed25519_dalek::SigningKey;
use std::cell::Cell;

const NOW: i64 = 1_800_000_000;

struct Keys(Vec<(String, VerifyingKey)>);
impl KeyLookup for Keys {
    fn verifying_key(&self, kid: &str) -> Option<VerifyingKey> {
        self.0.iter().find(|(k, _)| k == kid).map(|(_, v)| *v)
    }
}

struct Revoked {
    jtis: Vec<String>,
    unavailable: bool,
    asked: Cell<u32>,
}
impl RevocationView for Revoked {
    fn is_revoked(&self, c: &Claims) -> Result<bool, ViewUnavailable> {
        self.asked.set(self.asked.get() + 1);
        if self.unavailable {
            return Err(ViewUnavailable);
        }
        Ok(self.jtis.contains(&c.jti))
    }
}

fn none_revoked() -> Revoked {
    Revoked {
        jtis: vec![],
        unavailable: false,
        asked: Cell::new(0),
    }
}

struct Fixture {
    key: SigningKey,
    keys: Keys,
    policy: TokenPolicy,
}

fn fixture() -> Fixture {
    let key = SigningKey::from_bytes(&[42; 32]);
    let keys = Keys(vec![("k1".into(), key.verifying_key())]);
    Fixture {
        key,
        keys,
        policy: TokenPolicy::default(),
    }
}

fn claims(f: &Fixture, class: CredentialClass) -> Claims {
    let owner = Email::parse("alice@example.org").unwrap();
    new_claims(
        &f.policy,
        class,
        "alice@example.org",
        &owner,
        ScopeSet::for_role(Role::Owner),
        None,
        NOW,
    )
    .unwrap()
}

fn check(f: &Fixture, token: &str, now: i64) -> Result<Claims, TokenError> {
    verify_token(token, &f.keys, &none_revoked(), &f.policy, now)
}

/// Signs arbitrary header and payload JSON with the fixture key.
fn forge(f: &Fixture, header: &str, payload: &str) -> String {
    use ed25519_dalek::Signer;
    let input = format!("{}.{}", b64(header.as_bytes()), b64(payload.as_bytes()));
    let sig = f.key.sign(input.as_bytes());
    format!("{input}.{}", b64(&sig.to_bytes()))
}

fn payload_json(c: &Claims) -> String {
    serde_json::to_string(c).unwrap()
}

#[test]
fn a_freshly_signed_token_verifies() {
    let f = fixture();
    let c = claims(&f, CredentialClass::Session);
    let t = sign(&c, "k1", &f.key);
    assert_eq!(check(&f, &t, NOW), Ok(c));
}

#[test]
fn algorithms_other_than_eddsa_are_refused() {
    let f = fixture();
    let p = payload_json(&claims(&f, CredentialClass::Agent));
    for alg in ["none", "HS256", "RS256", "ES256", "eddsa", "Ed25519", ""] {
        let t = forge(&f, &format!(r#"{{"alg":"{alg}","kid":"k1"}}"#), &p);
        assert_eq!(check(&f, &t, NOW), Err(TokenError::Algorithm), "{alg}");
    }
    // alg "none" with an empty signature never reaches the algorithm check.
    let unsigned = format!(
        "{}.{}.",
        b64(br#"{"alg":"none","kid":"k1"}"#),
        b64(p.as_bytes())
    );
    assert!(check(&f, &unsigned, NOW).is_err());
}

#[test]
fn hs256_with_the_public_key_as_secret_is_refused() {
    use sha2::{Sha256, Sha512};
    let f = fixture();
    let p = payload_json(&claims(&f, CredentialClass::Api));
    let public = f.key.verifying_key();
    for alg in ["HS256", "HS512"] {
        let input = format!(
            "{}.{}",
            b64(format!(r#"{{"alg":"{alg}","kid":"k1"}}"#).as_bytes()),
            b64(p.as_bytes())
        );
        // HMAC keyed with the public key bytes: the classic confusion. The
        // tag is 64 bytes (HS256's twice) so the token has the shape of
        // ours and reaches the algorithm check.
        let mac = match alg {
            "HS256" => hmac::<Sha256>(public.as_bytes(), input.as_bytes()).repeat(2),
            _ => hmac::<Sha512>(public.as_bytes(), input.as_bytes()),
        };
        let t = format!("{input}.{}", b64(&mac));
        assert_eq!(check(&f, &t, NOW), Err(TokenError::Algorithm), "{alg}");

        // With the algorithm check out of the way, the HMAC tag still does
        // not pass as an Ed25519 signature: the key path refuses it too.
        let parsed = jws::split(&t).unwrap();
        assert_eq!(parsed.header.alg, alg);
        assert_eq!(
            signature_and_claims(&parsed, &f.keys, &f.policy, NOW),
            Err(TokenError::Signature),
            "{alg}"
        );
    }
}

fn hmac<D: sha2::Digest + sha2::digest::core_api::BlockSizeUser>(
    key: &[u8],
    msg: &[u8],
) -> Vec<u8> {
    // Minimal HMAC so the test needs no extra crate; only used to forge.
    let block = D::block_size();
    let mut k = vec![0u8; block];
    k[..key.len()].copy_from_slice(key);
    let ipad: Vec<u8> = k.iter().map(|b| b ^ 0x36).collect();
    let opad: Vec<u8> = k.iter().map(|b| b ^ 0x5c).collect();
    let inner = D::new().chain_update(&ipad).chain_update(msg).finalize();
    D::new()
        .chain_update(&opad)
        .chain_update(inner)
        .finalize()
        .to_vec()
}

#[test]
fn unknown_or_path_like_kids_are_refused() {
    let f = fixture();
    let p = payload_json(&claims(&f, CredentialClass::Agent));
    let t = forge(&f, r#"{"alg":"EdDSA","kid":"k2"}"#, &p);
    assert_eq!(check(&f, &t, NOW), Err(TokenError::UnknownKey));
    for kid in ["../k1", "/etc/passwd", "k1/..", "", "k 1", &"a".repeat(65)] {
        let t = forge(
            &f,
            &format!(
                r#"{{"alg":"EdDSA","kid":{}}}"#,
                serde_json::to_string(kid).unwrap()
            ),
            &p,
        );
        assert_eq!(check(&f, &t, NOW), Err(TokenError::KeyIdForm), "{kid}");
    }
}

#[test]
fn header_members_that_redirect_verification_are_refused() {
    let f = fixture();
    let p = payload_json(&claims(&f, CredentialClass::Agent));
    for extra in [
        r#","jku":"https://evil""#,
        r#","jwk":{}"#,
        r#","crit":["x"]"#,
        r#","x5u":"x""#,
    ] {
        let t = forge(&f, &format!(r#"{{"alg":"EdDSA","kid":"k1"{extra}}}"#), &p);
        assert!(
            matches!(check(&f, &t, NOW), Err(TokenError::Malformed(_))),
            "{extra}"
        );
    }
}

#[test]
fn missing_required_claims_are_refused() {
    let f = fixture();
    let c = claims(&f, CredentialClass::Agent);
    for field in ["exp", "jti", "owner", "iat", "sub", "cls"] {
        let mut v: serde_json::Value = serde_json::to_value(&c).unwrap();
        v.as_object_mut().unwrap().remove(field);
        let t = forge(&f, r#"{"alg":"EdDSA","kid":"k1"}"#, &v.to_string());
        assert!(
            matches!(check(&f, &t, NOW), Err(TokenError::Malformed(_))),
            "{field}"
        );
    }
}

#[test]
fn duplicate_claim_keys_are_refused() {
    let f = fixture();
    let c = claims(&f, CredentialClass::Agent);
    let p = payload_json(&c);
    let dup = p.replacen('{', r#"{"owner":"mallory@example.org","#, 1);
    let t = forge(&f, r#"{"alg":"EdDSA","kid":"k1"}"#, &dup);
    assert!(matches!(check(&f, &t, NOW), Err(TokenError::Malformed(_))));
}

#[test]
fn lifetime_above_the_class_maximum_is_refused() {
    let f = fixture();
    let mut c = claims(&f, CredentialClass::Agent);
    c.exp = c.iat + 86_401;
    let t = sign(&c, "k1", &f.key);
    assert_eq!(check(&f, &t, NOW), Err(TokenError::LifetimeAboveMaximum));
}

#[test]
fn time_window_honours_the_skew() {
    let f = fixture();
    let c = claims(&f, CredentialClass::Agent);
    let t = sign(&c, "k1", &f.key);
    assert!(check(&f, &t, NOW - 30).is_ok(), "iat within skew");
    assert_eq!(check(&f, &t, NOW - 31), Err(TokenError::NotYetValid));
    assert!(check(&f, &t, c.exp + 29).is_ok(), "exp within skew");
    assert_eq!(check(&f, &t, c.exp + 30), Err(TokenError::Expired));
}

#[test]
fn wrong_issuer_or_audience_is_refused() {
    let f = fixture();
    let mut c = claims(&f, CredentialClass::Agent);
    c.iss = "someone-else".into();
    assert_eq!(
        check(&f, &sign(&c, "k1", &f.key), NOW),
        Err(TokenError::Issuer)
    );
    let mut c = claims(&f, CredentialClass::Agent);
    c.aud = "other".into();
    assert_eq!(
        check(&f, &sign(&c, "k1", &f.key), NOW),
        Err(TokenError::Audience)
    );
}

#[test]
fn non_canonical_owner_or_jti_is_refused() {
    let f = fixture();
    let mut c = claims(&f, CredentialClass::Agent);
    c.owner = "Alice@Example.org".into();
    assert_eq!(
        check(&f, &sign(&c, "k1", &f.key), NOW),
        Err(TokenError::Claim("owner"))
    );
    let mut c = claims(&f, CredentialClass::Agent);
    c.jti = "short".into();
    assert_eq!(
        check(&f, &sign(&c, "k1", &f.key), NOW),
        Err(TokenError::Claim("jti"))
    );
}

#[test]
fn tampered_payload_or_signature_is_refused() {
    let f = fixture();
    let c = claims(&f, CredentialClass::Agent);
    let t = sign(&c, "k1", &f.key);
    let parts: Vec<&str> = t.split('.').collect();
    let mut evil = c.clone();
    evil.owner = "bob@example.org".into();
    let swapped = format!(
        "{}.{}.{}",
        parts[0],
        b64(payload_json(&evil).as_bytes()),
        parts[2]
    );
    assert_eq!(check(&f, &swapped, NOW), Err(TokenError::Signature));
    let mut sig = jws::b64_decode(parts[2]).unwrap();
    sig[0] ^= 1;
    let flipped = format!("{}.{}.{}", parts[0], parts[1], b64(&sig));
    assert_eq!(check(&f, &flipped, NOW), Err(TokenError::Signature));
    let other_key = SigningKey::from_bytes(&[7; 32]);
    assert_eq!(
        check(&f, &sign(&c, "k1", &other_key), NOW),
        Err(TokenError::Signature)
    );
}

#[test]
fn non_canonical_base64_is_refused() {
    let f = fixture();
    let t = sign(&claims(&f, CredentialClass::Agent), "k1", &f.key);
    let parts: Vec<&str> = t.split('.').collect();
    // Padding, standard-alphabet characters, and a changed trailing bit.
    let padded = format!("{}=.{}.{}", parts[0], parts[1], parts[2]);
    assert!(matches!(
        check(&f, &padded, NOW),
        Err(TokenError::Malformed(_))
    ));
    let sig = parts[2];
    let last = sig.chars().last().unwrap();
    let alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let idx = alphabet.find(last).unwrap();
    // 64 bytes encode to 86 characters: the last carries 4 unused bits.
    let sibling = alphabet.chars().nth(idx ^ 1).unwrap();
    let noncanon = format!(
        "{}.{}.{}{}",
        parts[0],
        parts[1],
        &sig[..sig.len() - 1],
        sibling
    );
    assert!(matches!(
        check(&f, &noncanon, NOW),
        Err(TokenError::Malformed(_))
    ));
    let plus = format!(
        "{}.{}.{}",
        parts[0],
        parts[1],
        sig.replace('-', "+").replace('_', "/")
    );
    if plus != t {
        assert!(check(&f, &plus, NOW).is_err());
    }
}

#[test]
fn wrong_segment_counts_and_oversized_tokens_are_refused() {
    let f = fixture();
    let t = sign(&claims(&f, CredentialClass::Agent), "k1", &f.key);
    for bad in [
        "",
        ".",
        "..",
        "a.b",
        "a.b.c.d",
        &format!("{t}."),
        &format!(".{t}"),
    ] {
        assert!(
            matches!(check(&f, bad, NOW), Err(TokenError::Malformed(_))),
            "{bad:?}"
        );
    }
    let huge = format!("{t}{}", "A".repeat(4097));
    assert_eq!(check(&f, &huge, NOW), Err(TokenError::TooLong));
}

#[test]
fn revoked_tokens_are_refused_and_an_unavailable_view_fails_closed() {
    let f = fixture();
    let c = claims(&f, CredentialClass::Agent);
    let t = sign(&c, "k1", &f.key);
    let view = Revoked {
        jtis: vec![c.jti.clone()],
        unavailable: false,
        asked: Cell::new(0),
    };
    assert_eq!(
        verify_token(&t, &f.keys, &view, &f.policy, NOW),
        Err(TokenError::Revoked)
    );
    let down = Revoked {
        jtis: vec![],
        unavailable: true,
        asked: Cell::new(0),
    };
    assert_eq!(
        verify_token(&t, &f.keys, &down, &f.policy, NOW),
        Err(TokenError::RevocationUnavailable)
    );
}

#[test]
fn revocation_is_consulted_only_for_otherwise_valid_tokens() {
    let f = fixture();
    let view = none_revoked();
    let _ = verify_token("x.y.z", &f.keys, &view, &f.policy, NOW);
    assert_eq!(view.asked.get(), 0);
    let t = sign(&claims(&f, CredentialClass::Agent), "k1", &f.key);
    assert!(verify_token(&t, &f.keys, &view, &f.policy, NOW).is_ok());
    assert_eq!(view.asked.get(), 1);
}

mod properties {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn arbitrary_text_never_verifies(s in "\\PC{0,600}") {
            let f = fixture();
            prop_assert!(check(&f, &s, NOW).is_err());
        }

        #[test]
        fn any_single_byte_change_breaks_a_token(pos in 0usize..400, byte in any::<u8>()) {
            let f = fixture();
            let t = sign(&claims(&f, CredentialClass::Job), "k1", &f.key);
            let mut bytes = t.clone().into_bytes();
            let i = pos % bytes.len();
            prop_assume!(bytes[i] != byte);
            bytes[i] = byte;
            if let Ok(changed) = String::from_utf8(bytes) {
                prop_assert!(check(&f, &changed, NOW).is_err());
            }
        }
    }
}

mod cached {
    use super::*;
    use std::cell::RefCell;
    use std::collections::HashMap;

    #[derive(Default)]
    struct MapCache(RefCell<HashMap<String, Claims>>);
    impl VerifiedCache for MapCache {
        fn get(&self, token: &str) -> Option<Claims> {
            self.0.borrow().get(token).cloned()
        }
        fn put(&self, token: &str, claims: &Claims) {
            self.0
                .borrow_mut()
                .insert(token.to_string(), claims.clone());
        }
    }

    #[test]
    fn a_cached_token_still_expires_and_is_still_revocable() {
        let f = fixture();
        let c = claims(&f, CredentialClass::Agent);
        let t = sign(&c, "k1", &f.key);
        let cache = MapCache::default();
        let none = none_revoked();
        assert!(verify_token_cached(&t, &f.keys, &none, &cache, &f.policy, NOW).is_ok());
        assert_eq!(cache.0.borrow().len(), 1);
        // A cache hit with no key known at all: the signature is not redone.
        let no_keys = Keys(vec![]);
        assert!(verify_token_cached(&t, &no_keys, &none, &cache, &f.policy, NOW).is_ok());
        assert_eq!(
            verify_token_cached(&t, &f.keys, &none, &cache, &f.policy, c.exp + 30),
            Err(TokenError::Expired)
        );
        let revoked = Revoked {
            jtis: vec![c.jti.clone()],
            unavailable: false,
            asked: Cell::new(0),
        };
        assert_eq!(
            verify_token_cached(&t, &f.keys, &revoked, &cache, &f.policy, NOW),
            Err(TokenError::Revoked)
        );
        let down = Revoked {
            jtis: vec![],
            unavailable: true,
            asked: Cell::new(0),
        };
        assert_eq!(
            verify_token_cached(&t, &f.keys, &down, &cache, &f.policy, NOW),
            Err(TokenError::RevocationUnavailable)
        );
    }

    #[test]
    fn refused_tokens_are_never_cached() {
        let f = fixture();
        let mut c = claims(&f, CredentialClass::Agent);
        c.iss = "evil".into();
        let cache = MapCache::default();
        assert!(verify_token_cached(
            &sign(&c, "k1", &f.key),
            &f.keys,
            &none_revoked(),
            &cache,
            &f.policy,
            NOW
        )
        .is_err());
        assert!(cache.0.borrow().is_empty());
    }
}

#[test]
fn a_lifetime_that_overflows_is_refused() {
    let f = fixture();
    let mut c = claims(&f, CredentialClass::Agent);
    c.iat = i64::MIN + 10;
    c.nbf = c.iat;
    c.exp = i64::MAX;
    assert_eq!(
        check(&f, &sign(&c, "k1", &f.key), NOW),
        Err(TokenError::LifetimeAboveMaximum)
    );
}

/// The audit log's vocabulary: each refusal has its own stable code.
#[test]
fn every_refusal_has_its_own_audit_code() {
    for (error, code) in [
        (TokenError::TooLong, "too_long"),
        (TokenError::Malformed("x"), "malformed"),
        (TokenError::Algorithm, "algorithm"),
        (TokenError::KeyIdForm, "kid_form"),
        (TokenError::UnknownKey, "unknown_kid"),
        (TokenError::Signature, "signature"),
        (TokenError::Issuer, "issuer"),
        (TokenError::Audience, "audience"),
        (TokenError::Claim("x"), "claim"),
        (TokenError::LifetimeAboveMaximum, "lifetime"),
        (TokenError::NotYetValid, "not_yet_valid"),
        (TokenError::Expired, "expired"),
        (TokenError::Revoked, "revoked"),
        (TokenError::RevocationUnavailable, "revocation_unavailable"),
    ] {
        assert_eq!(error.code(), code);
    }
}

#[test]
fn kids_of_letters_digits_dashes_and_underscores_are_well_formed() {
    for kid in ["k1", "key-2026", "key_1", "-", "_", &"a".repeat(64)] {
        assert!(kid_is_well_formed(kid), "{kid}");
    }
    for kid in ["", "a.b", "a/b", "a b", &"a".repeat(65)] {
        assert!(!kid_is_well_formed(kid), "{kid}");
    }
}

#[test]
fn a_jti_is_exactly_sixteen_bytes_of_base64url() {
    let f = fixture();
    for (jti, ok) in [
        (b64(&[7; 16]), true),
        ("!".repeat(22), false),
        (b64(&[7; 15]), false),
        (b64(&[7; 17]), false),
    ] {
        let mut c = claims(&f, CredentialClass::Agent);
        c.jti = jti.clone();
        let got = check(&f, &sign(&c, "k1", &f.key), NOW);
        if ok {
            assert_eq!(got, Ok(c), "{jti}");
        } else {
            assert_eq!(got, Err(TokenError::Claim("jti")), "{jti}");
        }
    }
}

#[test]
fn a_token_of_exactly_the_maximum_size_is_read() {
    let f = fixture();
    assert!(matches!(
        check(&f, &"a".repeat(MAX_TOKEN_BYTES), NOW),
        Err(TokenError::Malformed(_))
    ));
    assert_eq!(
        check(&f, &"a".repeat(MAX_TOKEN_BYTES + 1), NOW),
        Err(TokenError::TooLong)
    );
}

#[test]
fn subjects_hold_1_to_256_bytes() {
    let f = fixture();
    for (sub, ok) in [
        (String::new(), false),
        ("a".into(), true),
        ("a".repeat(256), true),
        ("a".repeat(257), false),
    ] {
        let mut c = claims(&f, CredentialClass::Agent);
        c.sub = sub.clone();
        let got = check(&f, &sign(&c, "k1", &f.key), NOW);
        if ok {
            assert_eq!(got, Ok(c), "{}", sub.len());
        } else {
            assert_eq!(got, Err(TokenError::Claim("sub")), "{}", sub.len());
        }
    }
}

/// iat <= nbf < exp, each bound on its own; the window then opens at nbf.
#[test]
fn iat_nbf_and_exp_must_be_in_order() {
    let f = fixture();
    let base = claims(&f, CredentialClass::Agent);
    let disorder = TokenError::Claim("iat/nbf/exp out of order");
    let with = |iat: i64, nbf: i64, exp: i64| {
        let mut c = base.clone();
        (c.iat, c.nbf, c.exp) = (iat, nbf, exp);
        c
    };
    let (i, e) = (base.iat, base.exp);
    // nbf after iat is fine, and the token is usable from nbf on.
    let later = with(i, i + 100, e);
    let t = sign(&later, "k1", &f.key);
    assert_eq!(check(&f, &t, i + 100), Ok(later));
    assert_eq!(check(&f, &t, i + 100 - 31), Err(TokenError::NotYetValid));
    for (c, why) in [
        (with(i, i - 1, e), "nbf before iat"),
        (with(i, e, e), "nbf at exp"),
        (with(i, e + 1, e), "nbf after exp"),
        (with(i, i, i), "exp at iat"),
        (with(i, i, i - 1), "exp before iat"),
    ] {
        assert_eq!(
            check(&f, &sign(&c, "k1", &f.key), NOW),
            Err(disorder.clone()),
            "{why}"
        );
    }
}

#[test]
fn a_lifetime_of_exactly_the_class_maximum_is_accepted() {
    let f = fixture();
    for class in CredentialClass::ALL {
        let mut c = claims(&f, class);
        c.exp = c.iat + crate::token::policy::class_maximum(class);
        assert_eq!(
            check(&f, &sign(&c, "k1", &f.key), NOW),
            Ok(c.clone()),
            "{class}"
        );
        c.exp += 1;
        assert_eq!(
            check(&f, &sign(&c, "k1", &f.key), NOW),
            Err(TokenError::LifetimeAboveMaximum),
            "{class}"
        );
    }
}
