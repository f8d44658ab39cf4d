//! Warm credential resolution for a job with 5 value grants (owner cache
//! hit, the resolver's rules over the store's material: data-key unwrap,
//! 5 decrypts) against 5 bare AEAD decrypts of the same values, in the
//! same run.
//! `cargo bench -p gatehouse-api --bench credential_resolution`
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;
use common::measure_named as measure;

use std::hint::black_box;

use gatehouse_api::job_credentials::{open, JobToken};
use gatehouse_api::keys::MasterKeys;
use gatehouse_api::owner_cache::OwnerCache;
use gatehouse_domain::crypto::{self, Purpose, SymmetricKey};
use gatehouse_domain::Email;
use gatehouse_store::{
    Grant, GrantMaterial, GrantMode, JobMaterial, JobRecord, SecretMaterial, WrappedKey,
};

fn main() {
    let master = MasterKeys::new(SymmetricKey::generate(), vec![]);
    let owner = Email::parse("alice@example.org").unwrap();
    let data_key = SymmetricKey::generate();
    let wrapped = master.wrap_data_key(&owner, &data_key);
    let value = "v".repeat(64);
    let grants: Vec<GrantMaterial> = (0..5)
        .map(|i| {
            let name = format!("SECRET_{i}");
            GrantMaterial {
                secret: Some(SecretMaterial {
                    sealed: crypto::seal(
                        &data_key,
                        Purpose::SecretValue,
                        &[owner.as_str(), &name],
                        value.as_bytes(),
                    ),
                    allowed_hosts: "[\"api.example.com\"]".into(),
                    inject: None,
                }),
                grant: Grant {
                    env_var: format!("ENV_{i}"),
                    secret: name,
                    mode: GrantMode::Value,
                },
                placeholder: None,
            }
        })
        .collect();
    let material = JobMaterial {
        job: JobRecord {
            id: "job-1".into(),
            owner: owner.clone(),
            agent: "bot".into(),
            created_by: owner.as_str().into(),
            token_jti: "jti-1".into(),
            packages: "[]".into(),
            allow_hosts: "[]".into(),
            created_at: 0,
            expires_at: 1,
            deleted_at: None,
            grants: grants.iter().map(|g| g.grant.clone()).collect(),
            grant_count: 5,
        },
        data_key: Some(WrappedKey {
            wrapped: wrapped.wrapped.clone(),
            master_kid: wrapped.master_kid.clone(),
        }),
        agent_allow_hosts: None,
        grants,
    };
    let cache = OwnerCache::new(10_000);
    cache.insert("job-1", &owner);

    let bare = measure(
        "5 bare XChaCha20-Poly1305 opens of 64 bytes (baseline)",
        50_000,
        || {
            for m in &material.grants {
                let sealed = &m.secret.as_ref().unwrap().sealed;
                black_box(crypto::open(
                    &data_key,
                    Purpose::SecretValue,
                    &[owner.as_str(), &m.grant.secret],
                    sealed,
                ))
                .unwrap();
            }
        },
    );
    let resolved = measure(
        "warm resolution: owner cache hit + data-key unwrap + 5 opens",
        50_000,
        || {
            let o = cache.get(black_box("job-1")).unwrap();
            let token = JobToken {
                job_id: "job-1",
                owner: &o,
                jti: "jti-1",
            };
            black_box(open(&master, token, &material, 0).map(|r| r.grants.len())).unwrap();
        },
    );
    println!();
    println!(
        "warm resolution / 5 bare opens = {:.2}x (target <= 2x)",
        resolved / bare
    );
    println!(
        "(store reads are not in this figure: one round trip, job_material, per resolution, \
         plus job_owner on an owner-cache miss)"
    );
}
