//! The one implementation of [`Store`](crate::Store), written once and
//! expanded for each engine.
//!
//! The SQL is common to SQLite and PostgreSQL (`$n` parameters,
//! `ON CONFLICT`, `RETURNING`), so one body serves both; what differs is
//! only how a write transaction starts (`BEGIN IMMEDIATE` on SQLite takes
//! the write lock up front, so two writers queue instead of deadlocking).
//!
//! The audit chain head is one row (`audit_head`). Every append first
//! updates it, which takes the row lock (PostgreSQL) or the database write
//! lock (SQLite): concurrent writers, even on several replicas, serialise
//! there, so `seq` has no gaps and the chain no forks.

use gatehouse_domain::{Email, Role};

use crate::error::{Result, StoreError};

pub(crate) fn role_to_str(role: Role) -> &'static str {
    match role {
        Role::Operator => "operator",
        Role::Owner => "owner",
    }
}

pub(crate) fn role_from_str(s: &str) -> Result<Role> {
    match s {
        "operator" => Ok(Role::Operator),
        "owner" => Ok(Role::Owner),
        other => Err(StoreError::Backend(format!(
            "unknown role {other:?} in store"
        ))),
    }
}

pub(crate) fn email_from_db(s: &str) -> Result<Email> {
    Email::parse(s).map_err(|e| StoreError::Backend(format!("stored owner is not an email: {e}")))
}

pub(crate) fn kind_to_columns(
    kind: &crate::model::RevocationKind,
) -> (&'static str, String, String, String) {
    use crate::model::RevocationKind;
    match kind {
        RevocationKind::Jti { jti } => ("jti", String::new(), String::new(), jti.clone()),
        RevocationKind::Subject { owner, subject } => (
            "subject",
            owner
                .as_ref()
                .map(|o| o.as_str().to_string())
                .unwrap_or_default(),
            subject.clone(),
            String::new(),
        ),
        RevocationKind::Owner { owner } => (
            "owner",
            owner.as_str().to_string(),
            String::new(),
            String::new(),
        ),
    }
}

pub(crate) fn kind_from_columns(
    kind: &str,
    owner: String,
    subject: String,
    jti: String,
) -> Result<crate::model::RevocationKind> {
    use crate::model::RevocationKind;
    Ok(match kind {
        "jti" => RevocationKind::Jti { jti },
        "subject" => RevocationKind::Subject {
            owner: if owner.is_empty() {
                None
            } else {
                Some(email_from_db(&owner)?)
            },
            subject,
        },
        "owner" => RevocationKind::Owner {
            owner: email_from_db(&owner)?,
        },
        other => {
            return Err(StoreError::Backend(format!(
                "unknown revocation kind {other:?}"
            )))
        }
    })
}

/// The NOTIFY payload: the revocation itself, so other replicas apply it
/// without a round trip. It can only add revocations (fail-closed).
pub(crate) fn encode_notification(r: &crate::model::Revocation) -> String {
    let (kind, owner, subject, jti) = kind_to_columns(&r.kind);
    serde_json::json!([r.id, kind, owner, subject, jti, r.not_before, r.expires_at]).to_string()
}

pub(crate) fn decode_notification(payload: &str) -> Option<crate::model::Revocation> {
    let v: serde_json::Value = serde_json::from_str(payload).ok()?;
    let f = v.as_array()?;
    let text = |i: usize| f.get(i).and_then(|x| x.as_str()).map(str::to_string);
    Some(crate::model::Revocation {
        id: f.first()?.as_i64()?,
        kind: kind_from_columns(&text(1)?, text(2)?, text(3)?, text(4)?).ok()?,
        not_before: f.get(5)?.as_i64()?,
        expires_at: f.get(6)?.as_i64()?,
    })
}

macro_rules! sql_store {
    ($store:ty, $db:ty, $engine:expr, $begin_write:literal, $notify_sql:literal, $wakeups:path) => {
        use async_trait::async_trait;
        use gatehouse_domain::audit::{AuditEvent, AuditRecord, ChainHead};
        use gatehouse_domain::clock::UnixTime;
        use gatehouse_domain::Email;
        use sqlx::Row;

        use crate::connect::Engine;
        use crate::error::{Result, StoreError};
        use crate::model::*;
        use crate::job_material::{JobMaterial, SecretMaterial};
        use crate::upstream_model::*;
        use crate::sql_store::{email_from_db, kind_from_columns, kind_to_columns, role_from_str, role_to_str};

        type Tx<'a> = sqlx::Transaction<'a, $db>;
        type DbRow = <$db as sqlx::Database>::Row;

        impl $store {
            async fn begin_write(&self) -> Result<Tx<'_>> {
                Ok(self.pool.begin_with($begin_write).await?)
            }

            /// Appends to the chain inside the caller's transaction.
            async fn append_in(tx: &mut Tx<'_>, event: AuditEvent, now: UnixTime) -> Result<AuditRecord> {
                let row = sqlx::query("UPDATE audit_head SET seq = seq + 1 WHERE id = 1 RETURNING seq, hash")
                    .fetch_one(&mut **tx)
                    .await?;
                let seq: i64 = row.try_get("seq")?;
                let prev: String = row.try_get("hash")?;
                let record = AuditRecord::chain(event, seq, now, &prev);
                sqlx::query("UPDATE audit_head SET hash = $1 WHERE id = 1")
                    .bind(&record.hash)
                    .execute(&mut **tx)
                    .await?;
                sqlx::query(
                    "INSERT INTO audit (seq, ts, actor, cls, owner, action, target, outcome, request_id, prev_hash, hash) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
                )
                .bind(record.seq)
                .bind(record.ts)
                .bind(&record.actor)
                .bind(&record.cls)
                .bind(&record.owner)
                .bind(&record.action)
                .bind(&record.target)
                .bind(&record.outcome)
                .bind(&record.request_id)
                .bind(&record.prev_hash)
                .bind(&record.hash)
                .execute(&mut **tx)
                .await?;
                Ok(record)
            }

            /// Takes the chain-head row lock (a no-op write; SQLite holds
            /// its write lock already), so what the transaction reads
            /// next includes every write committed before it, on any
            /// replica. Issues and revocations both take it before
            /// reading each other's stamps.
            async fn lock_chain_in(tx: &mut Tx<'_>) -> Result<()> {
                sqlx::query("UPDATE audit_head SET seq = seq WHERE id = 1")
                    .execute(&mut **tx)
                    .await?;
                Ok(())
            }

            /// The highest subject or owner watermark covering a token of
            /// (owner, subject), and of its agent `parent` for a job.
            async fn covering_watermark<'e, E>(e: E, owner: &Email, subject: &str, parent: Option<&str>) -> Result<Option<UnixTime>>
            where
                E: sqlx::Executor<'e, Database = $db>,
            {
                let row = sqlx::query(
                    "SELECT MAX(not_before) AS m FROM revocations WHERE (kind = 'owner' AND owner = $1) \
                     OR (kind = 'subject' AND (owner = $1 OR owner = '') AND (subject = $2 OR subject = $3))",
                )
                .bind(owner.as_str())
                .bind(subject)
                .bind(parent.unwrap_or(subject))
                .fetch_one(e)
                .await?;
                Ok(row.try_get::<Option<i64>, _>("m")?)
            }

            /// The latest `iat` of the tokens a revocation of `kind`
            /// covers (what lives under a subject included: `parent_subject`), for
            /// its watermark.
            async fn latest_issued_in(tx: &mut Tx<'_>, kind: &RevocationKind) -> Result<Option<UnixTime>> {
                let job_prefix = |subject: &str| (format!("{subject}/"), i32::try_from(subject.len() + 1).unwrap_or(i32::MAX));
                let row = match kind {
                    RevocationKind::Jti { .. } => return Ok(None),
                    RevocationKind::Owner { owner } => {
                        sqlx::query("SELECT MAX(iat) AS m FROM issued_tokens WHERE owner = $1")
                            .bind(owner.as_str())
                            .fetch_one(&mut **tx)
                            .await?
                    }
                    RevocationKind::Subject { owner, subject } => {
                        let (prefix, len) = job_prefix(subject);
                        sqlx::query(
                            "SELECT MAX(iat) AS m FROM issued_tokens WHERE ($1 = '' OR owner = $1) \
                             AND (subject = $2 OR (cls IN ('job', 'api') AND substr(subject, 1, $3) = $4))",
                        )
                        .bind(owner.as_ref().map_or("", |o| o.as_str()))
                        .bind(subject)
                        .bind(len)
                        .bind(prefix)
                        .fetch_one(&mut **tx)
                        .await?
                    }
                };
                Ok(row.try_get::<Option<i64>, _>("m")?)
            }

            /// Records an issued token. Under the chain-head lock, its
            /// `iat` must be above every watermark covering it: a
            /// revocation that committed while the token was being signed
            /// makes the issue fail rather than hand out a dead token.
            async fn insert_issued(tx: &mut Tx<'_>, t: &IssuedToken) -> Result<()> {
                Self::lock_chain_in(tx).await?;
                let parent = gatehouse_domain::token::watermark::parent_subject(t.class, &t.subject);
                let covering = Self::covering_watermark(&mut **tx, &t.owner, &t.subject, parent).await?;
                if covering.is_some_and(|w| gatehouse_domain::token::watermark::covers(w, t.iat)) {
                    return Err(StoreError::Conflict("a revocation covering this token was recorded while it was being issued"));
                }
                sqlx::query(
                    "INSERT INTO issued_tokens (jti, owner, subject, cls, scope, iat, exp) VALUES ($1, $2, $3, $4, $5, $6, $7)",
                )
                .bind(&t.jti)
                .bind(t.owner.as_str())
                .bind(&t.subject)
                .bind(t.class.as_str())
                .bind(&t.scope)
                .bind(t.iat)
                .bind(t.exp)
                .execute(&mut **tx)
                .await?;
                Ok(())
            }

            async fn insert_owner(tx: &mut Tx<'_>, owner: &NewOwner) -> Result<()> {
                sqlx::query("INSERT INTO owners (email, role, created_at, data_key, master_kid) VALUES ($1, $2, $3, $4, $5)")
                    .bind(owner.email.as_str())
                    .bind(role_to_str(owner.role))
                    .bind(owner.created_at)
                    .bind(&owner.data_key.wrapped)
                    .bind(&owner.data_key.master_kid)
                    .execute(&mut **tx)
                    .await
                    .map_err(|e| match StoreError::from(e) {
                        StoreError::Conflict(_) => StoreError::Conflict("owner exists"),
                        other => other,
                    })?;
                Ok(())
            }
        }

        fn audit_from_row(r: &DbRow) -> Result<AuditRecord> {
            Ok(AuditRecord {
                seq: r.try_get("seq")?,
                ts: r.try_get("ts")?,
                actor: r.try_get("actor")?,
                cls: r.try_get("cls")?,
                owner: r.try_get("owner")?,
                action: r.try_get("action")?,
                target: r.try_get("target")?,
                outcome: r.try_get("outcome")?,
                request_id: r.try_get("request_id")?,
                prev_hash: r.try_get("prev_hash")?,
                hash: r.try_get("hash")?,
            })
        }

        fn signing_key_from_row(r: &DbRow) -> Result<SigningKeyRecord> {
            Ok(SigningKeyRecord {
                kid: r.try_get("kid")?,
                public_key: r.try_get("public_key")?,
                sealed_private: r.try_get("sealed_private")?,
                master_kid: r.try_get("master_kid")?,
                created_at: r.try_get("created_at")?,
                retired_at: r.try_get("retired_at")?,
                verify_until: r.try_get("verify_until")?,
            })
        }

        fn issued_from_row(r: &DbRow) -> Result<IssuedToken> {
            let owner: String = r.try_get("owner")?;
            let cls: String = r.try_get("cls")?;
            Ok(IssuedToken {
                jti: r.try_get("jti")?,
                owner: email_from_db(&owner)?,
                subject: r.try_get("subject")?,
                class: gatehouse_domain::CredentialClass::parse(&cls)
                    .ok_or_else(|| StoreError::Backend(format!("unknown token class {cls:?}")))?,
                scope: r.try_get("scope")?,
                iat: r.try_get("iat")?,
                exp: r.try_get("exp")?,
            })
        }

        fn revocation_from_row(r: &DbRow) -> Result<Revocation> {
            let kind: String = r.try_get("kind")?;
            Ok(Revocation {
                id: r.try_get("id")?,
                kind: kind_from_columns(&kind, r.try_get("owner")?, r.try_get("subject")?, r.try_get("jti")?)?,
                not_before: r.try_get("not_before")?,
                expires_at: r.try_get("expires_at")?,
            })
        }

        fn job_from_row(r: &DbRow) -> Result<JobRecord> {
            let owner: String = r.try_get("owner")?;
            Ok(JobRecord {
                id: r.try_get("id")?,
                owner: email_from_db(&owner)?,
                agent: r.try_get("agent")?,
                created_by: r.try_get("created_by")?,
                token_jti: r.try_get("token_jti")?,
                packages: r.try_get("packages")?,
                allow_hosts: r.try_get("allow_hosts")?,
                created_at: r.try_get("created_at")?,
                expires_at: r.try_get("expires_at")?,
                deleted_at: r.try_get("deleted_at")?,
                grants: Vec::new(),
                grant_count: r.try_get("grant_count")?,
            })
        }

        fn grant_from_row(r: &DbRow) -> Result<Grant> {
            let mode: String = r.try_get("mode")?;
            Ok(Grant {
                env_var: r.try_get("env_var")?,
                secret: r.try_get("secret")?,
                mode: GrantMode::parse(&mode).ok_or_else(|| StoreError::Backend(format!("unknown grant mode {mode:?}")))?,
            })
        }

        fn placeholder_from_row(r: &DbRow) -> Result<PlaceholderRecord> {
            let owner: String = r.try_get("owner")?;
            Ok(PlaceholderRecord {
                placeholder: r.try_get("placeholder")?,
                owner: email_from_db(&owner)?,
                job_id: r.try_get("job_id")?,
                secret: r.try_get("secret")?,
                allowed_hosts: r.try_get("allowed_hosts")?,
                expires_at: r.try_get("expires_at")?,
            })
        }

        impl $store {
            async fn grants_of(&self, job_id: &str) -> Result<Vec<Grant>> {
                let rows = sqlx::query("SELECT env_var, secret, mode FROM job_grants WHERE job_id = $1 ORDER BY env_var")
                    .bind(job_id)
                    .fetch_all(&self.pool)
                    .await?;
                rows.iter().map(grant_from_row).collect()
            }
        }

        fn hook_from_row(r: &DbRow, with_secret: bool) -> Result<HookRecord> {
            let owner: String = r.try_get("owner")?;
            Ok(HookRecord {
                id: r.try_get("id")?,
                owner: email_from_db(&owner)?,
                provider: r.try_get("provider")?,
                sealed: if with_secret { r.try_get("sealed")? } else { Vec::new() },
                forward_to: r.try_get("forward_to")?,
                created_at: r.try_get("created_at")?,
            })
        }

        fn mcp_server_from_row(r: &DbRow) -> Result<McpServerRecord> {
            let owner: String = r.try_get("owner")?;
            Ok(McpServerRecord {
                owner: email_from_db(&owner)?,
                name: r.try_get("name")?,
                url: r.try_get("url")?,
                auth: r.try_get("auth")?,
                tools: r.try_get("tools")?,
                created_at: r.try_get("created_at")?,
                updated_at: r.try_get("updated_at")?,
            })
        }

        fn secret_from_row(r: &DbRow, with_value: bool) -> Result<SecretRecord> {
            let owner: String = r.try_get("owner")?;
            Ok(SecretRecord {
                owner: email_from_db(&owner)?,
                name: r.try_get("name")?,
                sealed: if with_value { r.try_get("sealed")? } else { Vec::new() },
                allowed_hosts: r.try_get("allowed_hosts")?,
                inject: r.try_get("inject")?,
                created_at: r.try_get("created_at")?,
                updated_at: r.try_get("updated_at")?,
            })
        }

        crate::sql_gated::gated_helpers!($store, $db, $notify_sql);
        crate::sql_gated::gated_methods!($store);

        #[async_trait]
        impl crate::store::Store for $store {
            async fn create_approval(&self, a: &ApprovalRecord, audit: AuditEvent, now: UnixTime) -> Result<()> {
                self.gated_create_approval(a, audit, now).await
            }
            async fn approval(&self, id: &str) -> Result<Option<ApprovalRecord>> {
                self.gated_approval(id).await
            }
            async fn approvals(&self, filter: &ApprovalFilter) -> Result<Vec<ApprovalRecord>> {
                self.gated_approvals(filter).await
            }
            async fn decide_approval(&self, id: &str, d: &ApprovalDecision, audit: AuditEvent, now: UnixTime) -> Result<DecideResult> {
                self.gated_decide_approval(id, d, audit, now).await
            }
            fn take_gate_key(&self) -> Option<GateKey> {
                (!self.gate_key_taken.swap(true, std::sync::atomic::Ordering::SeqCst)).then(GateKey::new)
            }
            async fn run_gated(&self, _key: &GateKey, action: &GatedAction, completion: Option<&Completion>, audit: Vec<AuditEvent>, now: UnixTime) -> Result<RunResult> {
                let ran = self.gated_run_gated(action, completion, audit, now).await;
                // Committed or not (an error may follow a commit).
                if let Some(owner) = crate::binding_events::action_owner(action) {
                    crate::binding_events::BindingEvents::bindings_changed(self, owner).await;
                }
                ran
            }
            async fn claim_approval(&self, id: &str, now: UnixTime) -> Result<bool> {
                self.gated_claim_approval(id, now).await
            }
            async fn fail_interrupted(&self, claimed_before: UnixTime, now: UnixTime) -> Result<Vec<ApprovalRecord>> {
                self.gated_fail_interrupted(claimed_before, now).await
            }
            async fn take_approval_result(&self, id: &str, jti: &str, now: UnixTime) -> Result<bool> {
                self.gated_take_approval_result(id, jti, now).await
            }
            async fn fail_approval(&self, id: &str, error: &str, audit: AuditEvent, now: UnixTime) -> Result<bool> {
                self.gated_fail_approval(id, error, audit, now).await
            }
            async fn expire_approvals(&self, now: UnixTime) -> Result<Vec<ApprovalRecord>> {
                self.gated_expire_approvals(now).await
            }
            async fn approved_approvals(&self, limit: i64) -> Result<Vec<ApprovalRecord>> {
                self.gated_approved_approvals(limit).await
            }
            async fn agents(&self, owner: &Email) -> Result<Vec<AgentRecord>> {
                self.gated_agents(owner).await
            }
            async fn secret_granted_to_agent(&self, owner: &Email, agent: &str, secret: &str) -> Result<bool> {
                self.gated_secret_granted_to_agent(owner, agent, secret).await
            }

            fn engine(&self) -> Engine {
                $engine
            }

            async fn ping(&self) -> Result<()> {
                sqlx::query("SELECT 1").execute(&self.pool).await?;
                Ok(())
            }

            async fn bootstrap_state(&self) -> Result<BootstrapState> {
                let r = sqlx::query("SELECT code_digest, claimed_by FROM bootstrap WHERE id = 1")
                    .fetch_one(&self.pool)
                    .await?;
                let claimed_by: Option<String> = r.try_get("claimed_by")?;
                Ok(match claimed_by {
                    Some(by) => BootstrapState::Claimed { by: email_from_db(&by)? },
                    None => BootstrapState::Unclaimed { code_digest: r.try_get("code_digest")? },
                })
            }

            async fn set_bootstrap_code(&self, digest: &[u8]) -> Result<bool> {
                let done = sqlx::query("UPDATE bootstrap SET code_digest = $1 WHERE id = 1 AND claimed_by IS NULL")
                    .bind(digest)
                    .execute(&self.pool)
                    .await?;
                Ok(done.rows_affected() == 1)
            }

            async fn claim_bootstrap(&self, operator: &NewOwner, audit: AuditEvent, now: UnixTime) -> Result<()> {
                let mut tx = self.begin_write().await?;
                let won = sqlx::query(
                    "UPDATE bootstrap SET claimed_by = $1, claimed_at = $2, code_digest = NULL \
                     WHERE id = 1 AND claimed_by IS NULL",
                )
                .bind(operator.email.as_str())
                .bind(now)
                .execute(&mut *tx)
                .await?;
                if won.rows_affected() != 1 {
                    return Err(StoreError::Conflict("already claimed"));
                }
                Self::insert_owner(&mut tx, operator).await?;
                Self::append_in(&mut tx, audit, now).await?;
                tx.commit().await?;
                Ok(())
            }

            async fn create_owner(&self, owner: &NewOwner, audit: AuditEvent, now: UnixTime) -> Result<()> {
                let mut tx = self.begin_write().await?;
                Self::insert_owner(&mut tx, owner).await?;
                Self::append_in(&mut tx, audit, now).await?;
                tx.commit().await?;
                Ok(())
            }

            async fn owner(&self, email: &Email) -> Result<Option<OwnerRecord>> {
                let row = sqlx::query("SELECT email, role, created_at FROM owners WHERE email = $1")
                    .bind(email.as_str())
                    .fetch_optional(&self.pool)
                    .await?;
                row.map(|r| -> Result<OwnerRecord> {
                    let email: String = r.try_get("email")?;
                    let role: String = r.try_get("role")?;
                    Ok(OwnerRecord {
                        email: email_from_db(&email)?,
                        role: role_from_str(&role)?,
                        created_at: r.try_get("created_at")?,
                    })
                })
                .transpose()
            }

            async fn owner_data_key(&self, email: &Email) -> Result<Option<WrappedKey>> {
                let row = sqlx::query("SELECT data_key, master_kid FROM owners WHERE email = $1")
                    .bind(email.as_str())
                    .fetch_optional(&self.pool)
                    .await?;
                row.map(|r| -> Result<WrappedKey> {
                    Ok(WrappedKey { wrapped: r.try_get("data_key")?, master_kid: r.try_get("master_kid")? })
                })
                .transpose()
            }

            async fn set_login_code(&self, email: &Email, digest: &[u8], expires_at: UnixTime) -> Result<()> {
                sqlx::query(
                    "INSERT INTO login_codes (email, code_digest, expires_at) VALUES ($1, $2, $3) \
                     ON CONFLICT (email) DO UPDATE SET code_digest = excluded.code_digest, expires_at = excluded.expires_at",
                )
                .bind(email.as_str())
                .bind(digest)
                .bind(expires_at)
                .execute(&self.pool)
                .await?;
                Ok(())
            }

            async fn login_code(&self, email: &Email, now: UnixTime) -> Result<Option<Vec<u8>>> {
                let row = sqlx::query("SELECT code_digest FROM login_codes WHERE email = $1 AND expires_at > $2")
                    .bind(email.as_str())
                    .bind(now)
                    .fetch_optional(&self.pool)
                    .await?;
                Ok(row.map(|r| r.try_get("code_digest")).transpose()?)
            }

            async fn consume_login_code(&self, email: &Email, digest: &[u8], audit: AuditEvent, now: UnixTime) -> Result<bool> {
                let mut tx = self.begin_write().await?;
                let done = sqlx::query("DELETE FROM login_codes WHERE email = $1 AND code_digest = $2 AND expires_at > $3")
                    .bind(email.as_str())
                    .bind(digest)
                    .bind(now)
                    .execute(&mut *tx)
                    .await?;
                if done.rows_affected() != 1 {
                    return Ok(false);
                }
                Self::append_in(&mut tx, audit, now).await?;
                tx.commit().await?;
                Ok(true)
            }

            async fn signing_keys(&self) -> Result<Vec<SigningKeyRecord>> {
                let rows = sqlx::query("SELECT * FROM signing_keys ORDER BY created_at, kid")
                    .fetch_all(&self.pool)
                    .await?;
                rows.iter().map(signing_key_from_row).collect()
            }

            async fn rotate_signing_key(&self, new: &SigningKeyRecord, verify_until: UnixTime, audit: AuditEvent, now: UnixTime) -> Result<()> {
                let mut tx = self.begin_write().await?;
                sqlx::query("UPDATE signing_keys SET retired_at = $1, verify_until = $2 WHERE retired_at IS NULL")
                    .bind(now)
                    .bind(verify_until)
                    .execute(&mut *tx)
                    .await?;
                sqlx::query(
                    "INSERT INTO signing_keys (kid, public_key, sealed_private, master_kid, created_at, retired_at, verify_until) \
                     VALUES ($1, $2, $3, $4, $5, NULL, NULL)",
                )
                .bind(&new.kid)
                .bind(&new.public_key)
                .bind(&new.sealed_private)
                .bind(&new.master_kid)
                .bind(new.created_at)
                .execute(&mut *tx)
                .await?;
                Self::append_in(&mut tx, audit, now).await?;
                tx.commit().await?;
                Ok(())
            }

            async fn sweep_signing_keys(&self, now: UnixTime) -> Result<u64> {
                let done = sqlx::query("DELETE FROM signing_keys WHERE retired_at IS NOT NULL AND verify_until < $1")
                    .bind(now)
                    .execute(&self.pool)
                    .await?;
                Ok(done.rows_affected())
            }

            async fn wrapped_keys(&self) -> Result<Vec<Rewrapped>> {
                let mut out = Vec::new();
                for r in sqlx::query("SELECT email, data_key, master_kid FROM owners ORDER BY email")
                    .fetch_all(&self.pool)
                    .await?
                {
                    let email: String = r.try_get("email")?;
                    out.push(Rewrapped::DataKey {
                        owner: email_from_db(&email)?,
                        key: WrappedKey { wrapped: r.try_get("data_key")?, master_kid: r.try_get("master_kid")? },
                    });
                }
                for r in sqlx::query("SELECT kid, sealed_private, master_kid FROM signing_keys ORDER BY kid")
                    .fetch_all(&self.pool)
                    .await?
                {
                    out.push(Rewrapped::SigningKey {
                        kid: r.try_get("kid")?,
                        sealed_private: r.try_get("sealed_private")?,
                        master_kid: r.try_get("master_kid")?,
                    });
                }
                for r in sqlx::query("SELECT generation, cert_pem, sealed_key, master_kid FROM egress_cas ORDER BY generation")
                    .fetch_all(&self.pool)
                    .await?
                {
                    out.push(Rewrapped::EgressCa {
                        generation: r.try_get("generation")?,
                        cert_pem: r.try_get("cert_pem")?,
                        sealed_key: r.try_get("sealed_key")?,
                        master_kid: r.try_get("master_kid")?,
                    });
                }
                Ok(out)
            }

            async fn replace_wrapped_keys(&self, keys: &[Rewrapped], audit: AuditEvent, now: UnixTime) -> Result<()> {
                let mut tx = self.begin_write().await?;
                for k in keys {
                    let done = match k {
                        Rewrapped::DataKey { owner, key } => {
                            sqlx::query("UPDATE owners SET data_key = $1, master_kid = $2 WHERE email = $3")
                                .bind(&key.wrapped)
                                .bind(&key.master_kid)
                                .bind(owner.as_str())
                                .execute(&mut *tx)
                                .await?
                        }
                        Rewrapped::SigningKey { kid, sealed_private, master_kid } => {
                            sqlx::query("UPDATE signing_keys SET sealed_private = $1, master_kid = $2 WHERE kid = $3")
                                .bind(sealed_private)
                                .bind(master_kid)
                                .bind(kid)
                                .execute(&mut *tx)
                                .await?
                        }
                        Rewrapped::EgressCa { generation, cert_pem, sealed_key, master_kid } => {
                            sqlx::query("UPDATE egress_cas SET sealed_key = $1, master_kid = $2 WHERE generation = $3 AND cert_pem = $4")
                                .bind(sealed_key)
                                .bind(master_kid)
                                .bind(generation)
                                .bind(cert_pem)
                                .execute(&mut *tx)
                                .await?
                        }
                    };
                    if done.rows_affected() != 1 {
                        // A key vanished or appeared meanwhile: roll back, run again.
                        return Err(StoreError::Conflict("wrapped keys changed during rotation"));
                    }
                }
                Self::append_in(&mut tx, audit, now).await?;
                tx.commit().await?;
                Ok(())
            }

            async fn secret(&self, owner: &Email, name: &str) -> Result<Option<SecretRecord>> {
                let row = sqlx::query("SELECT * FROM secrets WHERE owner = $1 AND name = $2")
                    .bind(owner.as_str())
                    .bind(name)
                    .fetch_optional(&self.pool)
                    .await?;
                row.map(|r| secret_from_row(&r, true)).transpose()
            }

            async fn list_secrets(&self, owner: &Email) -> Result<Vec<SecretRecord>> {
                let rows = sqlx::query(
                    "SELECT owner, name, allowed_hosts, inject, created_at, updated_at FROM secrets \
                     WHERE owner = $1 ORDER BY name",
                )
                .bind(owner.as_str())
                .fetch_all(&self.pool)
                .await?;
                rows.iter().map(|r| secret_from_row(r, false)).collect()
            }

            async fn create_agent(&self, owner: &Email, name: &str, audit: AuditEvent, now: UnixTime) -> Result<()> {
                let mut tx = self.begin_write().await?;
                sqlx::query("INSERT INTO agents (owner, name, created_at) VALUES ($1, $2, $3)")
                    .bind(owner.as_str())
                    .bind(name)
                    .bind(now)
                    .execute(&mut *tx)
                    .await
                    .map_err(|e| match StoreError::from(e) {
                        StoreError::Conflict(_) => StoreError::Conflict("agent exists"),
                        other => other,
                    })?;
                Self::append_in(&mut tx, audit, now).await?;
                tx.commit().await?;
                Ok(())
            }

            async fn agent_exists(&self, owner: &Email, name: &str) -> Result<bool> {
                Ok(sqlx::query("SELECT 1 AS one FROM agents WHERE owner = $1 AND name = $2")
                    .bind(owner.as_str())
                    .bind(name)
                    .fetch_optional(&self.pool)
                    .await?
                    .is_some())
            }

            async fn record_issued_token(&self, t: &IssuedToken, audit: AuditEvent, now: UnixTime) -> Result<()> {
                let mut tx = self.begin_write().await?;
                Self::insert_issued(&mut tx, t).await?;
                Self::append_in(&mut tx, audit, now).await?;
                tx.commit().await?;
                Ok(())
            }

            async fn issuance_floor(&self, owner: &Email, subject: &str, parent: Option<&str>) -> Result<Option<UnixTime>> {
                Self::covering_watermark(&self.pool, owner, subject, parent).await
            }

            async fn issued_token(&self, jti: &str) -> Result<Option<IssuedToken>> {
                let row = sqlx::query("SELECT * FROM issued_tokens WHERE jti = $1")
                    .bind(jti)
                    .fetch_optional(&self.pool)
                    .await?;
                row.map(|r| issued_from_row(&r)).transpose()
            }

            async fn issued_tokens(&self, owner: &Email, now: UnixTime) -> Result<Vec<IssuedToken>> {
                let rows = sqlx::query("SELECT * FROM issued_tokens WHERE owner = $1 AND exp > $2 ORDER BY iat DESC, jti")
                    .bind(owner.as_str())
                    .bind(now)
                    .fetch_all(&self.pool)
                    .await?;
                rows.iter().map(issued_from_row).collect()
            }

            async fn create_job(&self, job: &JobRecord, placeholders: &[PlaceholderRecord], token: &IssuedToken, audit: AuditEvent, now: UnixTime) -> Result<()> {
                let mut tx = self.begin_write().await?;
                Self::create_job_in(&mut tx, job, placeholders, token).await?;
                Self::append_in(&mut tx, audit, now).await?;
                tx.commit().await?;
                Ok(())
            }

            async fn job(&self, id: &str) -> Result<Option<JobRecord>> {
                let row = sqlx::query("SELECT * FROM jobs WHERE id = $1").bind(id).fetch_optional(&self.pool).await?;
                match row {
                    Some(r) => {
                        let mut job = job_from_row(&r)?;
                        job.grants = self.grants_of(id).await?;
                        Ok(Some(job))
                    }
                    None => Ok(None),
                }
            }

            async fn jobs(&self, owner: &Email) -> Result<Vec<JobRecord>> {
                let rows = sqlx::query("SELECT * FROM jobs WHERE owner = $1 ORDER BY created_at DESC, id")
                    .bind(owner.as_str())
                    .fetch_all(&self.pool)
                    .await?;
                let mut out = Vec::with_capacity(rows.len());
                for r in &rows {
                    let mut job = job_from_row(r)?;
                    job.grants = self.grants_of(&job.id).await?;
                    out.push(job);
                }
                Ok(out)
            }

            async fn job_owner(&self, id: &str) -> Result<Option<Email>> {
                let row = sqlx::query("SELECT owner FROM jobs WHERE id = $1").bind(id).fetch_optional(&self.pool).await?;
                row.map(|r| -> Result<Email> {
                    let owner: String = r.try_get("owner")?;
                    email_from_db(&owner)
                })
                .transpose()
            }

            async fn job_material(&self, job_id: &str, owner: &Email) -> Result<Option<JobMaterial>> {
                // One round trip; a secret row younger than the job is a
                // new secret that reuses a deleted one's name, not the one
                // granted.
                let rows = sqlx::query(
                    "SELECT j.*, o.data_key, o.master_kid, a.allow_hosts AS agent_allow_hosts, \
                     g.env_var, g.secret, g.mode, p.placeholder, p.expires_at AS placeholder_expires_at, \
                     s.sealed, s.allowed_hosts AS secret_allowed_hosts, s.inject AS secret_inject \
                     FROM jobs j \
                     LEFT JOIN owners o ON o.email = j.owner \
                     LEFT JOIN agents a ON a.owner = j.owner AND a.name = j.agent \
                     LEFT JOIN job_grants g ON g.job_id = j.id \
                     LEFT JOIN placeholders p ON p.job_id = j.id AND p.secret = g.secret AND g.mode = 'placeholder' \
                     LEFT JOIN secrets s ON s.owner = j.owner AND s.name = g.secret AND s.created_at <= j.created_at \
                     WHERE j.id = $1 AND j.owner = $2 \
                     ORDER BY g.env_var, p.placeholder",
                )
                .bind(job_id)
                .bind(owner.as_str())
                .fetch_all(&self.pool)
                .await?;
                let Some(first) = rows.first() else { return Ok(None) };
                let job = job_from_row(first)?;
                let wrapped: Option<Vec<u8>> = first.try_get("data_key")?;
                let kid: Option<String> = first.try_get("master_kid")?;
                let data_key = wrapped.zip(kid).map(|(wrapped, master_kid)| WrappedKey { wrapped, master_kid });
                let agent_allow_hosts: Option<String> = first.try_get("agent_allow_hosts")?;
                let material = rows
                    .iter()
                    .map(|r| {
                        let env_var: Option<String> = r.try_get("env_var")?;
                        let grant = env_var.map(|_| grant_from_row(r)).transpose()?;
                        let placeholder: Option<String> = r.try_get("placeholder")?;
                        let expires: Option<i64> = r.try_get("placeholder_expires_at")?;
                        let sealed: Option<Vec<u8>> = r.try_get("sealed")?;
                        let hosts: Option<String> = r.try_get("secret_allowed_hosts")?;
                        Ok(crate::job_material::MaterialRow {
                            grant,
                            placeholder: placeholder.zip(expires),
                            secret: sealed.zip(hosts).map(|(sealed, allowed_hosts)| -> Result<SecretMaterial> {
                                Ok(SecretMaterial { sealed, allowed_hosts, inject: r.try_get("secret_inject")? })
                            }).transpose()?,
                        })
                    })
                    .collect::<Result<Vec<_>>>()?;
                Ok(Some(crate::job_material::assemble(job, data_key, agent_allow_hosts, material)))
            }

            async fn job_placeholders(&self, job_id: &str) -> Result<Vec<PlaceholderRecord>> {
                let rows = sqlx::query("SELECT * FROM placeholders WHERE job_id = $1 ORDER BY secret")
                    .bind(job_id)
                    .fetch_all(&self.pool)
                    .await?;
                rows.iter().map(placeholder_from_row).collect()
            }

            async fn delete_job(&self, owner: &Email, id: &str, audit: AuditEvent, now: UnixTime) -> Result<bool> {
                let done: Result<_> = async {
                    let mut tx = self.begin_write().await?;
                    let done = sqlx::query("UPDATE jobs SET deleted_at = $1 WHERE id = $2 AND owner = $3 AND deleted_at IS NULL")
                        .bind(now)
                        .bind(id)
                        .bind(owner.as_str())
                        .execute(&mut *tx)
                        .await?;
                    if done.rows_affected() != 1 {
                        return Ok(false);
                    }
                    sqlx::query("DELETE FROM placeholders WHERE job_id = $1").bind(id).execute(&mut *tx).await?;
                    Self::expire_approvals_in(&mut tx, ExpireWhere::Job(id), "its job was deleted", now).await?;
                    Self::append_in(&mut tx, audit, now).await?;
                    tx.commit().await?;
                    Ok(true)
                }
                .await;
                crate::binding_events::BindingEvents::bindings_changed(self, owner.as_str()).await;
                done
            }

            async fn drop_agent_placeholders(&self, owner: &Email, agent: &str) -> Result<u64> {
                let done: Result<_> = async {
                    let done = sqlx::query(
                        "DELETE FROM placeholders WHERE job_id IN (SELECT id FROM jobs WHERE owner = $1 AND agent = $2)",
                    )
                    .bind(owner.as_str())
                    .bind(agent)
                    .execute(&self.pool)
                    .await?;
                    Ok(done.rows_affected())
                }
                .await;
                crate::binding_events::BindingEvents::bindings_changed(self, owner.as_str()).await;
                done
            }

            async fn create_hook(&self, hook: &HookRecord, audit: AuditEvent, now: UnixTime) -> Result<()> {
                let mut tx = self.begin_write().await?;
                sqlx::query(
                    "INSERT INTO hooks (id, owner, provider, sealed, forward_to, created_at) VALUES ($1, $2, $3, $4, $5, $6)",
                )
                .bind(&hook.id)
                .bind(hook.owner.as_str())
                .bind(&hook.provider)
                .bind(&hook.sealed)
                .bind(&hook.forward_to)
                .bind(hook.created_at)
                .execute(&mut *tx)
                .await?;
                Self::append_in(&mut tx, audit, now).await?;
                tx.commit().await?;
                Ok(())
            }

            async fn hook(&self, id: &str) -> Result<Option<HookRecord>> {
                let row = sqlx::query("SELECT * FROM hooks WHERE id = $1").bind(id).fetch_optional(&self.pool).await?;
                row.map(|r| hook_from_row(&r, true)).transpose()
            }

            async fn hooks(&self, owner: &Email) -> Result<Vec<HookRecord>> {
                let rows = sqlx::query("SELECT id, owner, provider, forward_to, created_at FROM hooks WHERE owner = $1 ORDER BY created_at, id")
                    .bind(owner.as_str())
                    .fetch_all(&self.pool)
                    .await?;
                rows.iter().map(|r| hook_from_row(r, false)).collect()
            }

            async fn delete_hook(&self, owner: &Email, id: &str, audit: AuditEvent, now: UnixTime) -> Result<bool> {
                let mut tx = self.begin_write().await?;
                let done = sqlx::query("DELETE FROM hooks WHERE id = $1 AND owner = $2")
                    .bind(id)
                    .bind(owner.as_str())
                    .execute(&mut *tx)
                    .await?;
                if done.rows_affected() != 1 {
                    return Ok(false);
                }
                Self::append_in(&mut tx, audit, now).await?;
                tx.commit().await?;
                Ok(true)
            }

            async fn mcp_server(&self, owner: &Email, name: &str) -> Result<Option<McpServerRecord>> {
                let row = sqlx::query("SELECT * FROM mcp_servers WHERE owner = $1 AND name = $2")
                    .bind(owner.as_str())
                    .bind(name)
                    .fetch_optional(&self.pool)
                    .await?;
                row.map(|r| mcp_server_from_row(&r)).transpose()
            }

            async fn mcp_servers(&self, owner: &Email) -> Result<Vec<McpServerRecord>> {
                let rows = sqlx::query("SELECT * FROM mcp_servers WHERE owner = $1 ORDER BY name")
                    .bind(owner.as_str())
                    .fetch_all(&self.pool)
                    .await?;
                rows.iter().map(mcp_server_from_row).collect()
            }

            async fn delete_mcp_server(&self, owner: &Email, name: &str, audit: AuditEvent, now: UnixTime) -> Result<bool> {
                let mut tx = self.begin_write().await?;
                let done = sqlx::query("DELETE FROM mcp_servers WHERE owner = $1 AND name = $2")
                    .bind(owner.as_str())
                    .bind(name)
                    .execute(&mut *tx)
                    .await?;
                if done.rows_affected() != 1 {
                    return Ok(false);
                }
                Self::append_in(&mut tx, audit, now).await?;
                tx.commit().await?;
                Ok(true)
            }

            async fn remember_delivery(&self, replay_key: &[u8], expires_at: UnixTime, now: UnixTime) -> Result<bool> {
                sqlx::query("DELETE FROM webhook_deliveries WHERE expires_at < $1").bind(now).execute(&self.pool).await?;
                let done = sqlx::query(
                    "INSERT INTO webhook_deliveries (replay_key, expires_at) VALUES ($1, $2) ON CONFLICT (replay_key) DO NOTHING",
                )
                .bind(replay_key)
                .bind(expires_at)
                .execute(&self.pool)
                .await?;
                Ok(done.rows_affected() == 1)
            }

            async fn forget_delivery(&self, replay_key: &[u8]) -> Result<()> {
                sqlx::query("DELETE FROM webhook_deliveries WHERE replay_key = $1").bind(replay_key).execute(&self.pool).await?;
                Ok(())
            }

            async fn revoke(&self, kind: RevocationKind, not_before: UnixTime, expires_at: UnixTime, audit: AuditEvent, now: UnixTime) -> Result<Revocation> {
                let mut tx = self.begin_write().await?;
                // The audit append takes the chain-head lock first, so
                // revocation ids are handed out in commit order and an
                // incremental reader never skips one.
                Self::append_in(&mut tx, audit, now).await?;
                let which = match &kind {
                    RevocationKind::Jti { jti } => ExpireWhere::Jti(jti),
                    RevocationKind::Subject { owner, subject } => ExpireWhere::Subject { owner: owner.as_ref(), subject },
                    RevocationKind::Owner { owner } => ExpireWhere::Owner(owner),
                };
                Self::expire_approvals_in(&mut tx, which, "the requesting credential was revoked", now).await?;
                let revocation = Self::revoke_in(&mut tx, kind, not_before, expires_at, now).await?;
                tx.commit().await?;
                Ok(revocation)
            }

            async fn revocations_since(&self, after_id: i64) -> Result<Vec<Revocation>> {
                let rows = sqlx::query("SELECT * FROM revocations WHERE id > $1 ORDER BY id")
                    .bind(after_id)
                    .fetch_all(&self.pool)
                    .await?;
                rows.iter().map(revocation_from_row).collect()
            }

            async fn live_revocations(&self, now: UnixTime) -> Result<Vec<Revocation>> {
                let rows = sqlx::query("SELECT * FROM revocations WHERE expires_at >= $1 ORDER BY id")
                    .bind(now)
                    .fetch_all(&self.pool)
                    .await?;
                rows.iter().map(revocation_from_row).collect()
            }

            async fn sweep_revocations(&self, now: UnixTime) -> Result<u64> {
                let a = sqlx::query("DELETE FROM revocations WHERE expires_at < $1").bind(now).execute(&self.pool).await?;
                let b = sqlx::query("DELETE FROM issued_tokens WHERE exp < $1").bind(now).execute(&self.pool).await?;
                Ok(a.rows_affected() + b.rows_affected())
            }

            async fn revocation_wakeups(&self) -> Option<tokio::sync::mpsc::Receiver<Option<Revocation>>> {
                $wakeups(self).await
            }

            async fn announce_approval(&self, id: &str) -> Result<()> {
                <Self as crate::approval_events::EngineEvents>::announce(self, id).await
            }

            fn binding_epoch(&self) -> crate::BindingEpoch {
                crate::binding_events::BindingEvents::epoch(self)
            }

            async fn approval_wakeups(&self) -> Option<tokio::sync::mpsc::Receiver<String>> {
                <Self as crate::approval_events::EngineEvents>::wakeups(self).await
            }

            async fn append_audit(&self, event: AuditEvent, now: UnixTime) -> Result<AuditRecord> {
                let mut tx = self.begin_write().await?;
                let record = Self::append_in(&mut tx, event, now).await?;
                tx.commit().await?;
                Ok(record)
            }

            async fn audit_page(&self, owner: Option<&Email>, since_seq: i64, limit: i64) -> Result<Vec<AuditRecord>> {
                let rows = match owner {
                    Some(o) => {
                        sqlx::query("SELECT * FROM audit WHERE owner = $1 AND seq > $2 ORDER BY seq LIMIT $3")
                            .bind(o.as_str())
                            .bind(since_seq)
                            .bind(limit)
                            .fetch_all(&self.pool)
                            .await?
                    }
                    None => {
                        sqlx::query("SELECT * FROM audit WHERE seq > $1 ORDER BY seq LIMIT $2")
                            .bind(since_seq)
                            .bind(limit)
                            .fetch_all(&self.pool)
                            .await?
                    }
                };
                rows.iter().map(audit_from_row).collect()
            }

            async fn audit_all(&self) -> Result<(Vec<AuditRecord>, ChainHead)> {
                // One read transaction so the head and the rows agree.
                let mut tx = self.pool.begin().await?;
                let head = sqlx::query("SELECT seq, hash FROM audit_head WHERE id = 1")
                    .fetch_one(&mut *tx)
                    .await?;
                let head = ChainHead { seq: head.try_get("seq")?, hash: head.try_get("hash")? };
                let rows = sqlx::query("SELECT * FROM audit ORDER BY seq").fetch_all(&mut *tx).await?;
                tx.commit().await?;
                let records = rows.iter().map(audit_from_row).collect::<Result<Vec<_>>>()?;
                Ok((records, head))
            }

            // Upstream credentials (SPEC §8).
            // Bodies in sql_upstream.rs.
            async fn egress_cas(&self) -> Result<Vec<EgressCaRecord>> {
                self.egress_cas_sql().await
            }

            async fn create_egress_ca(&self, ca: &EgressCaRecord, audit: AuditEvent, now: UnixTime) -> Result<bool> {
                self.create_egress_ca_sql(ca, audit, now).await
            }

            async fn rotate_egress_ca(&self, new: &EgressCaRecord, trust_until: UnixTime, audit: AuditEvent, now: UnixTime) -> Result<()> {
                self.rotate_egress_ca_sql(new, trust_until, audit, now).await
            }

            async fn upstream_state(&self, name: &str) -> Result<Option<UpstreamState>> {
                self.upstream_state_sql(name).await
            }

            async fn upstream_tokens(&self, name: &str) -> Result<Vec<UpstreamTokenRecord>> {
                self.upstream_tokens_sql(name).await
            }

            async fn upstream_open_tokens(&self, name: &str) -> Result<Vec<UpstreamTokenRecord>> {
                self.upstream_open_tokens_sql(name).await
            }

            async fn upstream_install(&self, install: &UpstreamInstall, audit: AuditEvent, now: UnixTime) -> Result<()> {
                let done = self.upstream_install_sql(install, audit, now).await;
                crate::binding_events::BindingEvents::bindings_changed(self, install.secret.owner.as_str()).await;
                done
            }

            async fn upstream_persist_pending(&self, name: &str, expected_current: &str, pending: &UpstreamSlot, audit: AuditEvent, now: UnixTime) -> Result<()> {
                self.upstream_persist_pending_sql(name, expected_current, pending, audit, now).await
            }

            async fn upstream_switch(&self, name: &str, pending_id: &str, secret: &SecretRecord, audit: AuditEvent, now: UnixTime) -> Result<()> {
                let done = self.upstream_switch_sql(name, pending_id, secret, audit, now).await;
                crate::binding_events::BindingEvents::bindings_changed(self, secret.owner.as_str()).await;
                done
            }

            async fn upstream_discard_pending(&self, name: &str, pending_id: &str, audit: AuditEvent, now: UnixTime) -> Result<()> {
                self.upstream_discard_pending_sql(name, pending_id, audit, now).await
            }

            async fn upstream_revoke_done(&self, name: &str, token_id: &str, state: UpstreamTokenState, audit: AuditEvent, now: UnixTime) -> Result<()> {
                self.upstream_revoke_done_sql(name, token_id, state, audit, now).await
            }

            async fn upstream_revoke_failed(&self, name: &str, token_id: &str, next_attempt_at: UnixTime, error: &str, audit: AuditEvent, now: UnixTime) -> Result<()> {
                self.upstream_revoke_failed_sql(name, token_id, next_attempt_at, error, audit, now).await
            }

            async fn owner_active(&self, owner: &Email, now: UnixTime) -> Result<bool> {
                self.owner_active_sql(owner, now).await
            }

            async fn upstream_lock(&self, name: &str) -> Result<Option<UpstreamLock>> {
                self.upstream_lock_sql(name).await
            }

            async fn upstream_unlock(&self, lock: UpstreamLock) -> Result<()> {
                self.upstream_unlock_sql(lock).await
            }
        }

    };
}

pub(crate) use sql_store;
