#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use super::*;
use std::os::unix::fs::PermissionsExt;

/// A TLS handshake with `server` as `host`, by a client trusting only
/// `roots_pem`: `Err` names why the client refused.
async fn handshake(server: Arc<ServerConfig>, roots_pem: &str, host: &str) -> Result<(), String> {
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(roots_pem.as_bytes()) {
        roots.add(cert.unwrap()).unwrap();
    }
    let client = rustls::ClientConfig::builder_with_provider(crate::tls::provider())
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let (a, b) = tokio::io::duplex(64 * 1024);
    let acceptor = tokio_rustls::TlsAcceptor::from(server);
    let serving = tokio::spawn(async move { acceptor.accept(b).await.map(|_| ()) });
    let connector = tokio_rustls::TlsConnector::from(Arc::new(client));
    let name = rustls::pki_types::ServerName::try_from(host.to_string()).unwrap();
    let outcome = connector
        .connect(name, a)
        .await
        .map(|_| ())
        .map_err(|e| e.to_string());
    let _ = serving.await;
    outcome
}

fn view_of(ca: &NewCa, cross: Option<String>, bundle: &[&str]) -> CaView {
    CaView {
        generation: ca.generation,
        key_pem: ca.key_pem.clone(),
        cert_pem: ca.cert_pem.clone(),
        cross_pem: cross,
        bundle_pem: bundle.concat(),
    }
}

#[test]
fn created_once_with_a_private_key_file_and_reused() {
    let dir = tempfile::tempdir().unwrap();
    let ca = CertAuthority::load_or_create(dir.path()).unwrap();
    let mode = std::fs::metadata(dir.path().join(CA_KEY_FILE))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
    assert!(ca.ca_pem().starts_with("-----BEGIN CERTIFICATE-----"));
    let again = CertAuthority::load_or_create(dir.path()).unwrap();
    assert_eq!(again.ca_pem(), ca.ca_pem());
}

#[test]
fn leaves_are_cached_per_host() {
    let dir = tempfile::tempdir().unwrap();
    let ca = CertAuthority::load_or_create(dir.path()).unwrap();
    let a = ca.server_config("api.test").unwrap();
    let b = ca.server_config("api.test").unwrap();
    assert!(Arc::ptr_eq(&a, &b));
    let c = ca.server_config("127.0.0.1").unwrap();
    assert!(!Arc::ptr_eq(&a, &c));
}

#[test]
fn the_leaf_cache_is_bounded_and_keeps_the_hosts_in_use() {
    let first = new_ca(1).unwrap();
    let ca = CertAuthority::with_leaf_cache(&view_of(&first, None, &[&first.cert_pem]), 3).unwrap();
    let hot = ca.server_config("hot.test").unwrap();
    for i in 0..10 {
        ca.server_config(&format!("h{i}.test")).unwrap();
        // Used between every new host: never the least recent.
        assert!(Arc::ptr_eq(&hot, &ca.server_config("hot.test").unwrap()));
        assert!(ca.cached_leaves() <= 3);
    }
    assert_eq!(ca.cached_leaves(), 3);
}

#[tokio::test]
async fn a_leaf_verifies_against_the_bundle_of_a_replica_with_the_same_ca() {
    let first = new_ca(1).unwrap();
    let view = || view_of(&first, None, &[&first.cert_pem]);
    let a = CertAuthority::from_view(&view()).unwrap();
    let b = CertAuthority::from_view(&view()).unwrap();
    let leaf_of_b = b.server_config("api.test").unwrap();
    handshake(leaf_of_b, &a.ca_pem(), "api.test").await.unwrap();
    // And not against another installation's CA.
    let stranger = new_ca(1).unwrap();
    let refused = handshake(
        b.server_config("api.test").unwrap(),
        &stranger.cert_pem,
        "api.test",
    )
    .await;
    assert!(refused.is_err(), "a foreign CA must not verify");
}

#[tokio::test]
async fn a_rotation_keeps_old_bundles_working_until_the_overlap_ends() {
    let old = new_ca(1).unwrap();
    let ca = CertAuthority::from_view(&view_of(&old, None, &[&old.cert_pem])).unwrap();
    let before = ca.server_config("api.test").unwrap();
    assert_eq!(ca.cached_leaves(), 1);

    let new = new_ca(2).unwrap();
    let cross = cross_sign(&new, 1, &old.key_pem).unwrap();
    let overlap = view_of(&new, Some(cross), &[&new.cert_pem, &old.cert_pem]);
    assert!(ca.install(&overlap).unwrap());
    assert!(!ca.install(&overlap).unwrap(), "same view: nothing to do");
    assert_eq!(ca.generation(), 2);
    assert_eq!(ca.cached_leaves(), 0, "a new generation drops the leaves");
    let during = ca.server_config("api.test").unwrap();
    assert!(!Arc::ptr_eq(&before, &during));
    assert!(ca.ca_pem().starts_with(&new.cert_pem), "newest first");
    assert!(ca.ca_pem().contains(&old.cert_pem));
    // New leaves chain to the new CA alone...
    handshake(during.clone(), &new.cert_pem, "api.test")
        .await
        .unwrap();
    // ...and, through the cross certificate, to the old one alone.
    handshake(during.clone(), &old.cert_pem, "api.test")
        .await
        .unwrap();
    handshake(during, &ca.ca_pem(), "api.test").await.unwrap();

    // The overlap ends: the old CA leaves the bundle and the chain.
    let after = view_of(&new, None, &[&new.cert_pem]);
    assert!(ca.install(&after).unwrap());
    let leaf = ca.server_config("api.test").unwrap();
    handshake(leaf.clone(), &new.cert_pem, "api.test")
        .await
        .unwrap();
    assert!(handshake(leaf, &old.cert_pem, "api.test").await.is_err());
    assert_eq!(ca.ca_pem(), new.cert_pem);
}

#[test]
fn a_new_ca_is_not_printed() {
    let ca = new_ca(3).unwrap();
    let shown = format!("{ca:?}");
    assert!(!shown.contains("PRIVATE"), "{shown}");
    let view = view_of(&ca, None, &[&ca.cert_pem]);
    assert!(!format!("{view:?}").contains("PRIVATE"));
}

#[test]
fn generations_have_distinct_names() {
    assert_eq!(ca_name(1), "Gatehouse egress CA");
    assert_ne!(ca_name(2), ca_name(3));
}
