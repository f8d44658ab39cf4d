//! Key material held by a running server: the master key ring (to unwrap
//! owner data keys and signing keys) and the token signing key ring.

use ed25519_dalek::{SigningKey, VerifyingKey};
use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use gatehouse_domain::clock::UnixTime;
use gatehouse_domain::crypto::{self, Purpose, SymmetricKey};
use gatehouse_domain::token::policy::class_maximum;
use gatehouse_domain::token::KeyLookup;
use gatehouse_domain::{CredentialClass, Email};
use gatehouse_store::{SigningKeyRecord, Store, StoreError, WrappedKey};

/// The master key in use, plus any other loaded key (a rotation in
/// flight), each known by its key id.
#[derive(Clone)]
pub struct MasterKeys {
    current: SymmetricKey,
    others: Vec<SymmetricKey>,
}

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("a key was wrapped by master key {0}, which is not loaded: wrong GATEHOUSE_MASTER_KEY or key file for this store")]
    UnknownMasterKey(String),
    #[error("a wrapped key does not open: {0}")]
    Corrupt(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl MasterKeys {
    pub fn new(current: SymmetricKey, others: Vec<SymmetricKey>) -> Self {
        Self { current, others }
    }

    pub fn current(&self) -> &SymmetricKey {
        &self.current
    }

    pub fn by_id(&self, kid: &str) -> Option<&SymmetricKey> {
        std::iter::once(&self.current)
            .chain(self.others.iter())
            .find(|k| k.key_id() == kid)
    }

    pub fn wrap_data_key(&self, owner: &Email, data_key: &SymmetricKey) -> WrappedKey {
        WrappedKey {
            wrapped: crypto::wrap_data_key(&self.current, owner.as_str(), data_key),
            master_kid: self.current.key_id(),
        }
    }

    pub fn unwrap_data_key(
        &self,
        owner: &Email,
        key: &WrappedKey,
    ) -> Result<SymmetricKey, KeyError> {
        let master = self
            .by_id(&key.master_kid)
            .ok_or_else(|| KeyError::UnknownMasterKey(key.master_kid.clone()))?;
        crypto::unwrap_data_key(master, owner.as_str(), &key.wrapped)
            .map_err(|e| KeyError::Corrupt(format!("data key of {owner}: {e}")))
    }

    pub fn open_signing_key(&self, rec: &SigningKeyRecord) -> Result<SigningKey, KeyError> {
        let master = self
            .by_id(&rec.master_kid)
            .ok_or_else(|| KeyError::UnknownMasterKey(rec.master_kid.clone()))?;
        let raw = crypto::open(
            master,
            Purpose::SigningKey,
            &[&rec.kid],
            &rec.sealed_private,
        )
        .map_err(|e| KeyError::Corrupt(format!("signing key {}: {e}", rec.kid)))?;
        let bytes: [u8; 32] = raw.expose().try_into().map_err(|_| {
            KeyError::Corrupt(format!("signing key {} has the wrong length", rec.kid))
        })?;
        Ok(SigningKey::from_bytes(&bytes))
    }

    /// A fresh signing key, sealed under the current master key.
    pub fn new_signing_key(&self, now: UnixTime) -> SigningKeyRecord {
        let key = SigningKey::from_bytes(&gatehouse_domain::codes::random_array());
        let public = key.verifying_key();
        let kid = gatehouse_domain::token::jws::b64(
            &crypto::labelled_digest("gatehouse/v1/kid", public.as_bytes())[..12],
        );
        SigningKeyRecord {
            sealed_private: crypto::seal(
                &self.current,
                Purpose::SigningKey,
                &[&kid],
                key.as_bytes(),
            ),
            kid,
            public_key: public.as_bytes().to_vec(),
            master_kid: self.current.key_id(),
            created_at: now,
            retired_at: None,
            verify_until: None,
        }
    }
}

/// The longest any token may live: a retired key verifies this long.
pub fn longest_token_lifetime() -> i64 {
    CredentialClass::ALL
        .into_iter()
        .map(class_maximum)
        .max()
        .unwrap_or(0)
}

struct KeySet {
    active: Option<(String, SigningKey)>,
    verifying: HashMap<String, VerifyingKey>,
}

/// Signing keys as loaded from the store; reloaded after a rotation.
#[derive(Clone)]
pub struct SigningKeys(Arc<RwLock<Arc<KeySet>>>);

impl SigningKeys {
    pub fn empty() -> Self {
        Self(Arc::new(RwLock::new(Arc::new(KeySet {
            active: None,
            verifying: HashMap::new(),
        }))))
    }

    fn snapshot(&self) -> Arc<KeySet> {
        match self.0.read() {
            Ok(guard) => guard.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Loads every key still needed; creates the first one if none exists.
    pub async fn load(
        &self,
        store: &dyn Store,
        master: &MasterKeys,
        now: UnixTime,
    ) -> Result<(), KeyError> {
        let mut records = store.signing_keys().await?;
        if !records.iter().any(|r| r.retired_at.is_none()) {
            let first = master.new_signing_key(now);
            let mut event =
                gatehouse_domain::audit::AuditEvent::new("keys.create_signing_key", "ok");
            event.actor = "gatehouse".into();
            event.target = first.kid.clone();
            store
                .rotate_signing_key(&first, now + longest_token_lifetime(), event, now)
                .await?;
            records = store.signing_keys().await?;
        }
        let mut verifying = HashMap::new();
        let mut active = None;
        for rec in records
            .iter()
            .filter(|r| r.verify_until.is_none_or(|t| t >= now))
        {
            let key = master.open_signing_key(rec)?;
            verifying.insert(rec.kid.clone(), key.verifying_key());
            if rec.retired_at.is_none() {
                active = Some((rec.kid.clone(), key));
            }
        }
        let set = Arc::new(KeySet { active, verifying });
        match self.0.write() {
            Ok(mut guard) => *guard = set,
            Err(poisoned) => *poisoned.into_inner() = set,
        }
        Ok(())
    }

    /// The active key, to sign new tokens.
    pub fn active(&self) -> Option<(String, SigningKey)> {
        self.snapshot().active.clone()
    }

    /// Public keys for `/.well-known/jwks.json`.
    pub fn public_keys(&self) -> Vec<(String, VerifyingKey)> {
        let mut keys: Vec<_> = self
            .snapshot()
            .verifying
            .iter()
            .map(|(k, v)| (k.clone(), *v))
            .collect();
        keys.sort_by(|a, b| a.0.cmp(&b.0));
        keys
    }
}

impl KeyLookup for SigningKeys {
    fn verifying_key(&self, kid: &str) -> Option<VerifyingKey> {
        self.snapshot().verifying.get(kid).copied()
    }
}
