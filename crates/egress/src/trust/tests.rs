#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use super::*;
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair};

fn ca_pem(name: &str) -> (String, CertificateDer<'static>) {
    let key = KeyPair::generate().unwrap();
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.distinguished_name.push(DnType::CommonName, name);
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let cert = params.self_signed(&key).unwrap();
    (cert.pem(), cert.der().clone())
}

fn env(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[test]
fn trust_parses_the_three_names_and_refuses_others_naming_them() {
    assert_eq!(Trust::parse("platform").unwrap(), Trust::Platform);
    assert_eq!(Trust::parse(" WebPKI ").unwrap(), Trust::Webpki);
    assert_eq!(Trust::parse("both").unwrap(), Trust::Both);
    assert_eq!(Trust::default(), Trust::Platform);
    let e = Trust::parse("system").unwrap_err();
    assert!(
        e.contains("\"system\"") && e.contains("platform, webpki, both"),
        "{e}"
    );
    for t in [Trust::Platform, Trust::Webpki, Trust::Both] {
        assert_eq!(Trust::parse(t.as_str()).unwrap(), t);
    }
}

#[test]
fn the_platform_store_location_comes_from_the_given_environment_only() {
    let store = PlatformStore::from_env(&env(&[
        ("SSL_CERT_FILE", "/x/bundle.pem"),
        ("SSL_CERT_DIR", "/a:/b::"),
    ]));
    assert_eq!(store.cert_file, Some(PathBuf::from("/x/bundle.pem")));
    assert_eq!(
        store.cert_dirs,
        vec![PathBuf::from("/a"), PathBuf::from("/b")]
    );
    assert_eq!(
        store.to_string(),
        "SSL_CERT_FILE=/x/bundle.pem, SSL_CERT_DIR=/a:/b"
    );
    let default = PlatformStore::from_env(&env(&[("SSL_CERT_FILE", " ")]));
    assert_eq!(default, PlatformStore::default());
    assert_eq!(default.to_string(), "the system's trust store");
}

#[test]
fn a_named_bundle_is_the_platform_store() {
    let dir = tempfile::tempdir().unwrap();
    let (pem_a, der_a) = ca_pem("Corporate CA A");
    let (pem_b, der_b) = ca_pem("Corporate CA B");
    let file = dir.path().join("bundle.pem");
    std::fs::write(&file, format!("{pem_a}{pem_b}")).unwrap();
    let store = PlatformStore {
        cert_file: Some(file),
        cert_dirs: vec![],
    };
    let mut certs = store.load().unwrap();
    certs.sort_unstable_by(|a, b| a.as_ref().cmp(b.as_ref()));
    let mut want = vec![der_a, der_b];
    want.sort_unstable_by(|a, b| a.as_ref().cmp(b.as_ref()));
    assert_eq!(certs, want);

    let trust = UpstreamTrust {
        trust: Trust::Platform,
        platform: store.clone(),
        extra_root_certs: vec![],
    };
    assert_eq!(trust.roots().unwrap().len(), 2, "only the platform store");
    let both = UpstreamTrust {
        trust: Trust::Both,
        ..trust.clone()
    };
    assert_eq!(
        both.roots().unwrap().len(),
        2 + webpki_roots::TLS_SERVER_ROOTS.len()
    );
    let webpki = UpstreamTrust {
        trust: Trust::Webpki,
        ..trust
    };
    assert_eq!(
        webpki.roots().unwrap().len(),
        webpki_roots::TLS_SERVER_ROOTS.len(),
        "webpki ignores the platform store"
    );
}

#[test]
fn a_named_directory_is_read_too() {
    let dir = tempfile::tempdir().unwrap();
    let (pem, der) = ca_pem("Dir CA");
    std::fs::write(dir.path().join("one.pem"), &pem).unwrap();
    let store = PlatformStore {
        cert_file: None,
        cert_dirs: vec![dir.path().to_path_buf()],
    };
    assert_eq!(store.load().unwrap(), vec![der]);
}

#[test]
fn a_missing_or_empty_platform_store_is_an_error_naming_it_not_a_fallback() {
    let dir = tempfile::tempdir().unwrap();
    let missing = PlatformStore {
        cert_file: Some(dir.path().join("nope.pem")),
        cert_dirs: vec![],
    };
    let e = missing.load().unwrap_err();
    assert!(matches!(e, TrustError::Unreadable { .. }), "{e:?}");
    assert!(e.to_string().contains("nope.pem"), "{e}");

    let empty_file = dir.path().join("empty.pem");
    std::fs::write(&empty_file, "not a certificate\n").unwrap();
    let empty = PlatformStore {
        cert_file: Some(empty_file),
        cert_dirs: vec![],
    };
    let e = empty.load().unwrap_err();
    assert!(matches!(e, TrustError::Empty(_)), "{e:?}");
    let text = e.to_string();
    assert!(
        text.contains("empty.pem") && text.contains("egress.trust"),
        "{text}"
    );
    // `both` does not quietly fall back to webpki alone either.
    let both = UpstreamTrust {
        trust: Trust::Both,
        platform: empty,
        extra_root_certs: vec![],
    };
    assert!(matches!(both.roots(), Err(TrustError::Empty(_))));
    // With webpki the platform store is not read at all.
    let webpki = UpstreamTrust {
        trust: Trust::Webpki,
        platform: missing,
        extra_root_certs: vec![],
    };
    assert!(webpki.roots().is_ok());
}

#[test]
fn extra_roots_are_added_whatever_the_trust_and_a_bad_file_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let (pem, _) = ca_pem("Extra CA");
    let extra = dir.path().join("extra.pem");
    std::fs::write(&extra, pem).unwrap();
    let trust = UpstreamTrust::webpki(vec![extra]);
    assert_eq!(
        trust.roots().unwrap().len(),
        webpki_roots::TLS_SERVER_ROOTS.len() + 1
    );
    let bad = dir.path().join("bad.pem");
    std::fs::write(&bad, "nothing here").unwrap();
    let e = UpstreamTrust::webpki(vec![bad]).roots().unwrap_err();
    assert!(
        e.to_string().contains("egress.extra_root_certs") && e.to_string().contains("bad.pem"),
        "{e}"
    );
}

#[test]
fn pem_bundle_round_trips() {
    let (_, a) = ca_pem("A");
    let (_, b) = ca_pem("B");
    let text = pem_bundle(&[a.clone(), b.clone()]);
    let back: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(text.as_bytes())
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(back, vec![a, b]);
    assert!(text.lines().all(|l| l.len() <= 64));
}
