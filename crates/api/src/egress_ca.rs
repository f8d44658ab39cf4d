//! The installation's egress CA (SPEC §6): one for every replica, kept in
//! the store with its private key sealed under the master key (purpose
//! `egress-ca-key`, context: generation and a digest of its
//! certificate), never in the data directory.
//!
//! - Start ([`load`]): the first replica to start creates generation 1
//!   (`Store::create_egress_ca`, one winner; the others read it back). A
//!   data directory holding a CA from before (`egress-ca.key`,
//!   `egress-ca.pem`) is imported as generation 1 when the store has none,
//!   so agents' bundles keep working; its files are removed either way.
//! - Rotation ([`rotate`], `gatehouse keys rotate-ca`): a new generation
//!   signs from then on; its certificate is also signed by the previous CA
//!   (the cross certificate, presented after leaves), and the previous CA
//!   stays in the served bundle until `egress.ca_overlap_seconds` have
//!   passed, so clients holding the old bundle keep connecting.
//! - Running replicas re-read the rows every [`RELOAD_INTERVAL`]
//!   ([`run_reload`]) and install a changed view, which drops their leaf
//!   caches; the end of an overlap is noticed the same way.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use gatehouse_domain::audit::AuditEvent;
use gatehouse_domain::clock::{Clock, UnixTime};
use gatehouse_domain::crypto::{self, Purpose, SymmetricKey};
use gatehouse_egress::ca::{self as egress_ca, CaView, CertAuthority, NewCa};
use gatehouse_store::{EgressCaRecord, Store, StoreError};
use zeroize::Zeroizing;

use crate::keys::{KeyError, MasterKeys};

/// How often a running replica looks for a rotated CA or an ended overlap.
pub const RELOAD_INTERVAL: Duration = Duration::from_secs(2);

#[derive(Debug, thiserror::Error)]
pub enum EgressCaError {
    #[error(transparent)]
    Keys(#[from] KeyError),
    #[error("store: {0}")]
    Store(#[from] StoreError),
    #[error(transparent)]
    Cert(#[from] egress_ca::CaError),
    #[error("egress CA: {0}")]
    Invalid(String),
}

/// The associated data of a generation's sealed key.
fn context(generation: i64, cert_pem: &str) -> [String; 2] {
    [
        generation.to_string(),
        hex::encode(crypto::labelled_digest(
            "gatehouse/v1/egress-ca-cert",
            cert_pem.as_bytes(),
        )),
    ]
}

fn seal_with(
    key: &SymmetricKey,
    generation: i64,
    cert_pem: &str,
    key_pem: &str,
) -> (Vec<u8>, String) {
    let [g, digest] = context(generation, cert_pem);
    (
        crypto::seal(
            key,
            Purpose::EgressCaKey,
            &[&g, &digest],
            key_pem.as_bytes(),
        ),
        key.key_id(),
    )
}

/// Opens a generation's key under whichever loaded master key wrapped it.
pub fn open_key(
    master: &MasterKeys,
    generation: i64,
    cert_pem: &str,
    sealed_key: &[u8],
    master_kid: &str,
) -> Result<Zeroizing<String>, KeyError> {
    let key = master
        .by_id(master_kid)
        .ok_or_else(|| KeyError::UnknownMasterKey(master_kid.to_string()))?;
    let [g, digest] = context(generation, cert_pem);
    let raw = crypto::open(key, Purpose::EgressCaKey, &[&g, &digest], sealed_key)
        .map_err(|e| KeyError::Corrupt(format!("egress CA generation {generation}: {e}")))?;
    let text = std::str::from_utf8(raw.expose())
        .map_err(|_| KeyError::Corrupt(format!("egress CA generation {generation} is not PEM")))?;
    Ok(Zeroizing::new(text.to_string()))
}

/// A generation's key sealed again under `new_key` (master-key rotation).
pub fn reseal(
    master: &MasterKeys,
    new_key: &SymmetricKey,
    generation: i64,
    cert_pem: &str,
    sealed_key: &[u8],
    master_kid: &str,
) -> Result<(Vec<u8>, String), KeyError> {
    let key_pem = open_key(master, generation, cert_pem, sealed_key, master_kid)?;
    Ok(seal_with(new_key, generation, cert_pem, &key_pem))
}

fn record(
    master: &MasterKeys,
    ca: &NewCa,
    cross_pem: Option<String>,
    now: UnixTime,
) -> EgressCaRecord {
    let (sealed_key, master_kid) =
        seal_with(master.current(), ca.generation, &ca.cert_pem, &ca.key_pem);
    EgressCaRecord {
        generation: ca.generation,
        cert_pem: ca.cert_pem.clone(),
        cross_pem,
        sealed_key,
        master_kid,
        created_at: now,
        retired_at: None,
        trust_until: None,
    }
}

/// What a replica serves at `now`: the signer (the newest generation not
/// retired), the bundle (the signer, then every retired CA still inside
/// its overlap) and the cross certificate while the signer's predecessor
/// is in the bundle.
pub fn view(
    rows: &[EgressCaRecord],
    master: &MasterKeys,
    now: UnixTime,
) -> Result<CaView, EgressCaError> {
    let signer = rows
        .iter()
        .filter(|r| r.retired_at.is_none())
        .max_by_key(|r| r.generation)
        .ok_or_else(|| EgressCaError::Invalid("the store holds no active CA".into()))?;
    let mut trusted: Vec<&EgressCaRecord> = rows
        .iter()
        .filter(|r| r.generation != signer.generation)
        .filter(|r| r.trust_until.is_some_and(|t| t > now))
        .collect();
    trusted.sort_by_key(|r| std::cmp::Reverse(r.generation));
    let mut bundle_pem = signer.cert_pem.clone();
    for r in &trusted {
        if !bundle_pem.ends_with('\n') {
            bundle_pem.push('\n');
        }
        bundle_pem.push_str(&r.cert_pem);
    }
    let previous_trusted = trusted
        .iter()
        .any(|r| r.generation == signer.generation - 1);
    Ok(CaView {
        generation: signer.generation,
        key_pem: open_key(
            master,
            signer.generation,
            &signer.cert_pem,
            &signer.sealed_key,
            &signer.master_kid,
        )?,
        cert_pem: signer.cert_pem.clone(),
        cross_pem: signer.cross_pem.clone().filter(|_| previous_trusted),
        bundle_pem,
    })
}

fn server_event(action: &str, generation: i64) -> AuditEvent {
    let mut event = AuditEvent::new(action, "ok");
    event.actor = "gatehouse".into();
    event.target = format!("egress CA generation {generation}");
    event
}

fn remove_file(path: &Path) -> Result<(), EgressCaError> {
    match std::fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(EgressCaError::Invalid(format!(
            "cannot remove {}: {e}",
            path.display()
        ))),
    }
}

/// The installation's CA as this replica must serve it: created (or
/// imported from `data_dir`) when the store has none. A CA left in the
/// data directory is removed afterwards, imported or not.
pub async fn load(
    store: &dyn Store,
    master: &MasterKeys,
    data_dir: &Path,
    now: UnixTime,
) -> Result<CaView, EgressCaError> {
    let mut rows = store.egress_cas().await?;
    let legacy = egress_ca::read_files(data_dir)?;
    if rows.is_empty() {
        let (fresh, action) = match &legacy {
            Some((key_pem, cert_pem)) => (
                NewCa {
                    generation: 1,
                    key_pem: key_pem.clone(),
                    cert_pem: cert_pem.clone(),
                },
                "egress.ca_import",
            ),
            None => (egress_ca::new_ca(1)?, "egress.ca_create"),
        };
        let won = store
            .create_egress_ca(
                &record(master, &fresh, None, now),
                server_event(action, 1),
                now,
            )
            .await?;
        if won {
            tracing::info!(action, "the installation's egress CA is in the store");
        }
        rows = store.egress_cas().await?;
    }
    if let Some((_, cert_pem)) = &legacy {
        if !rows.iter().any(|r| r.cert_pem == *cert_pem) {
            tracing::warn!(
                dir = %data_dir.display(),
                "this data directory held its own egress CA, not the installation's: it is removed; \
                 agents that trusted it must fetch GET /v1/egress/ca.pem again"
            );
        }
        remove_file(&data_dir.join(egress_ca::CA_KEY_FILE))?;
        remove_file(&data_dir.join(egress_ca::CA_CERT_FILE))?;
    }
    view(&rows, master, now)
}

/// Makes the next generation the signer; the current one stays trusted
/// (in the bundle, and through the cross certificate) for `overlap`
/// seconds. Returns the new generation (also the audit record's target).
pub async fn rotate(
    store: &dyn Store,
    master: &MasterKeys,
    overlap: i64,
    mut audit: AuditEvent,
    now: UnixTime,
) -> Result<i64, EgressCaError> {
    let rows = store.egress_cas().await?;
    let current = rows
        .iter()
        .filter(|r| r.retired_at.is_none())
        .max_by_key(|r| r.generation)
        .ok_or_else(|| {
            EgressCaError::Invalid(
                "the store holds no egress CA yet: start `gatehouse serve` once".into(),
            )
        })?;
    let current_key = open_key(
        master,
        current.generation,
        &current.cert_pem,
        &current.sealed_key,
        &current.master_kid,
    )?;
    let next_generation = rows.iter().map(|r| r.generation).max().unwrap_or(0) + 1;
    let next = egress_ca::new_ca(next_generation)?;
    let cross = egress_ca::cross_sign(&next, current.generation, &current_key)?;
    audit.target = format!("egress CA generation {next_generation}");
    store
        .rotate_egress_ca(
            &record(master, &next, Some(cross), now),
            now + overlap,
            audit,
            now,
        )
        .await?;
    Ok(next_generation)
}

/// Keeps `ca` in step with the store until `stop` changes.
pub async fn run_reload(
    ca: Arc<CertAuthority>,
    store: Arc<dyn Store>,
    master: MasterKeys,
    clock: Arc<dyn Clock>,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    loop {
        tokio::select! {
            _ = tokio::time::sleep(RELOAD_INTERVAL) => {}
            _ = stop.changed() => return,
        }
        if let Err(e) = reload(&ca, store.as_ref(), &master, clock.now()).await {
            tracing::warn!("egress CA reload failed: {e}");
        }
    }
}

/// One step of [`run_reload`]: whether a changed CA was installed.
pub async fn reload(
    ca: &CertAuthority,
    store: &dyn Store,
    master: &MasterKeys,
    now: UnixTime,
) -> Result<bool, EgressCaError> {
    let rows = store.egress_cas().await?;
    let view = view(&rows, master, now)?;
    let changed = ca.install(&view)?;
    if changed {
        tracing::info!(
            generation = view.generation,
            "egress CA changed; leaf certificates are minted anew"
        );
    }
    Ok(changed)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    fn masters() -> MasterKeys {
        MasterKeys::new(SymmetricKey::generate(), Vec::new())
    }

    #[test]
    fn a_sealed_key_opens_only_under_its_master_key_and_row() {
        let master = masters();
        let ca = egress_ca::new_ca(1).unwrap();
        let rec = record(&master, &ca, None, 5);
        let opened = open_key(&master, 1, &rec.cert_pem, &rec.sealed_key, &rec.master_kid).unwrap();
        assert_eq!(*opened, *ca.key_pem);
        // Another master key, even claiming the same id, does not open it.
        let other = masters();
        let err = open_key(&other, 1, &rec.cert_pem, &rec.sealed_key, &rec.master_kid);
        assert!(matches!(err, Err(KeyError::UnknownMasterKey(_))));
        let impostor = MasterKeys::new(SymmetricKey::generate(), Vec::new());
        let raw = crypto::open(
            impostor.current(),
            Purpose::EgressCaKey,
            &context(1, &rec.cert_pem).each_ref().map(String::as_str),
            &rec.sealed_key,
        );
        assert!(raw.is_err());
        // Nor beside another generation or certificate.
        assert!(open_key(&master, 2, &rec.cert_pem, &rec.sealed_key, &rec.master_kid).is_err());
        let stranger = egress_ca::new_ca(1).unwrap();
        assert!(open_key(
            &master,
            1,
            &stranger.cert_pem,
            &rec.sealed_key,
            &rec.master_kid
        )
        .is_err());
    }

    #[test]
    fn the_view_lists_the_signer_first_and_retired_cas_until_their_overlap_ends() {
        let master = masters();
        let one = egress_ca::new_ca(1).unwrap();
        let two = egress_ca::new_ca(2).unwrap();
        let cross = egress_ca::cross_sign(&two, 1, &one.key_pem).unwrap();
        let mut first = record(&master, &one, None, 1);
        first.retired_at = Some(10);
        first.trust_until = Some(100);
        let second = record(&master, &two, Some(cross.clone()), 10);
        let rows = vec![second, first];
        let during = view(&rows, &master, 50).unwrap();
        assert_eq!(during.generation, 2);
        assert_eq!(
            during.bundle_pem,
            format!("{}{}", two.cert_pem, one.cert_pem)
        );
        assert_eq!(during.cross_pem.as_deref(), Some(cross.as_str()));
        let after = view(&rows, &master, 100).unwrap();
        assert_eq!(after.bundle_pem, two.cert_pem);
        assert_eq!(after.cross_pem, None);
    }

    #[test]
    fn a_resealed_key_opens_under_the_new_master_key_only() {
        let master = masters();
        let ca = egress_ca::new_ca(1).unwrap();
        let rec = record(&master, &ca, None, 5);
        let next = SymmetricKey::generate();
        let (sealed, kid) = reseal(
            &master,
            &next,
            1,
            &rec.cert_pem,
            &rec.sealed_key,
            &rec.master_kid,
        )
        .unwrap();
        assert_eq!(kid, next.key_id());
        let rotated = MasterKeys::new(next, Vec::new());
        assert_eq!(
            *open_key(&rotated, 1, &rec.cert_pem, &sealed, &kid).unwrap(),
            *ca.key_pem
        );
        assert!(open_key(&master, 1, &rec.cert_pem, &sealed, &kid).is_err());
    }
}
