//! Turning a job's grant material into what the job receives: the
//! placeholder for placeholder grants, the decrypted value for value
//! grants. Every failure is a bare reason for the server log; the route
//! answers all of them with the same 403.

use gatehouse_domain::clock::UnixTime;
use gatehouse_domain::crypto::{self, Purpose};
use gatehouse_domain::Email;
use gatehouse_store::{GrantMaterial, GrantMode, WrappedKey};

use crate::keys::MasterKeys;

/// `(env_var, value)` per grant, in the material's order.
pub fn open_grants(
    master: &MasterKeys,
    owner: &Email,
    wrapped: &WrappedKey,
    material: Vec<GrantMaterial>,
    now: UnixTime,
) -> Result<Vec<(String, String)>, &'static str> {
    let mut data_key = None;
    let mut out = Vec::with_capacity(material.len());
    for m in material {
        let sealed = m.sealed.ok_or("secret missing")?;
        let value = match m.grant.mode {
            GrantMode::Placeholder => {
                let (placeholder, expires_at) = m.placeholder.ok_or("placeholder missing")?;
                if expires_at <= now {
                    return Err("placeholder expired");
                }
                placeholder
            }
            GrantMode::Value => {
                if data_key.is_none() {
                    data_key = Some(
                        master
                            .unwrap_data_key(owner, wrapped)
                            .map_err(|_| "data key does not open")?,
                    );
                }
                let key = data_key.as_ref().ok_or("data key")?;
                let plain = crypto::open(
                    key,
                    Purpose::SecretValue,
                    &[owner.as_str(), &m.grant.secret],
                    &sealed,
                )
                .map_err(|_| "value does not decrypt")?;
                plain.expose_str().ok_or("value is not text")?.to_string()
            }
        };
        out.push((m.grant.env_var, value));
    }
    Ok(out)
}
