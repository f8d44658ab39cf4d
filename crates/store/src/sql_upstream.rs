//! Upstream credential storage (SPEC §8), written once for both engines
//! like `sql_store.rs` and expanded beside it: the trait methods there
//! delegate here. Each rotation step is one transaction with its audit
//! record; conditional updates (`WHERE current_id = …`, `pending_id = …`)
//! make a step that lost a race fail with `Conflict` instead of
//! overwriting another replica's work.

/// The advisory-lock key of an upstream: FNV-1a over a domain-separated
/// name, so upstream locks do not collide with other users of the lock
/// space in practice.
pub(crate) fn upstream_lock_key(name: &str) -> i64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in b"gatehouse/upstream/".iter().chain(name.as_bytes()) {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h as i64
}

macro_rules! sql_upstream {
    ($store:ty, $db:ty, $engine:expr) => {
        impl $store {
            pub(crate) async fn upstream_state_sql(&self, name: &str) -> Result<Option<UpstreamState>> {
                let row = sqlx::query("SELECT * FROM upstream_state WHERE name = $1")
                    .bind(name)
                    .fetch_optional(&self.pool)
                    .await?;
                row.map(|r| upstream_state_from_row(&r)).transpose()
            }

            pub(crate) async fn upstream_tokens_sql(&self, name: &str) -> Result<Vec<UpstreamTokenRecord>> {
                let rows = sqlx::query("SELECT * FROM upstream_tokens WHERE upstream = $1 ORDER BY created_at DESC, token_id")
                    .bind(name)
                    .fetch_all(&self.pool)
                    .await?;
                rows.iter().map(upstream_token_from_row).collect()
            }

            pub(crate) async fn upstream_open_tokens_sql(&self, name: &str) -> Result<Vec<UpstreamTokenRecord>> {
                let rows = sqlx::query(
                    "SELECT * FROM upstream_tokens WHERE upstream = $1 AND state IN ('pending', 'current', 'pending_revoke') \
                     ORDER BY created_at DESC, token_id",
                )
                .bind(name)
                .fetch_all(&self.pool)
                .await?;
                rows.iter().map(upstream_token_from_row).collect()
            }

            pub(crate) async fn upstream_install_sql(&self, install: &UpstreamInstall, audit: AuditEvent, now: UnixTime) -> Result<()> {
                let mut tx = self.begin_write().await?;
                // The audit append first: it takes the chain-head lock, so two
                // installs on two replicas run one after the other and the
                // second sees the first's token (and gets Conflict).
                Self::append_in(&mut tx, audit, now).await?;
                let existing = sqlx::query("SELECT * FROM upstream_state WHERE name = $1")
                    .bind(&install.name)
                    .fetch_optional(&mut *tx)
                    .await?
                    .map(|r| upstream_state_from_row(&r))
                    .transpose()?;
                if let Some(state) = &existing {
                    if state.current.as_ref().is_some_and(|c| c.expires_at > now) {
                        return Err(StoreError::Conflict("upstream credential active"));
                    }
                    if let Some(old) = &state.current {
                        Self::set_upstream_token_state_in(&mut tx, &install.name, &old.token_id, "expired").await?;
                    }
                    if let Some(p) = &state.pending {
                        Self::queue_upstream_revoke_in(&mut tx, &install.name, &p.token_id, now).await?;
                    }
                }
                let c = &install.current;
                sqlx::query(
                    "INSERT INTO upstream_state (name, owner, current_id, current_sealed, current_expires_at, last_rotation, \
                     pending_id, pending_sealed, pending_expires_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, NULL, NULL, NULL, $6) \
                     ON CONFLICT (name) DO UPDATE SET owner = excluded.owner, current_id = excluded.current_id, \
                     current_sealed = excluded.current_sealed, current_expires_at = excluded.current_expires_at, \
                     last_rotation = excluded.last_rotation, pending_id = NULL, pending_sealed = NULL, \
                     pending_expires_at = NULL, updated_at = excluded.updated_at",
                )
                .bind(&install.name)
                .bind(install.owner.as_str())
                .bind(&c.token_id)
                .bind(&c.sealed)
                .bind(c.expires_at)
                .bind(now)
                .execute(&mut *tx)
                .await?;
                Self::insert_upstream_token_in(&mut tx, &install.name, &c.token_id, "minted", "current", Some(c.expires_at), now).await?;
                if let Some(pasted) = &install.pasted_id {
                    Self::insert_upstream_token_in(&mut tx, &install.name, pasted, "pasted", "pending_revoke", None, now).await?;
                }
                // The one secret write outside a gated action: the reserved
                // `upstream.<name>` (no handler may write that name), kept in
                // step with the state in this same transaction.
                Self::put_secret_in(&mut tx, &install.secret).await?;
                tx.commit().await?;
                Ok(())
            }

            pub(crate) async fn upstream_persist_pending_sql(&self, name: &str, expected_current: &str, pending: &UpstreamSlot, audit: AuditEvent, now: UnixTime) -> Result<()> {
                let mut tx = self.begin_write().await?;
                let done = sqlx::query(
                    "UPDATE upstream_state SET pending_id = $1, pending_sealed = $2, pending_expires_at = $3, updated_at = $4 \
                     WHERE name = $5 AND current_id = $6 AND pending_id IS NULL",
                )
                .bind(&pending.token_id)
                .bind(&pending.sealed)
                .bind(pending.expires_at)
                .bind(now)
                .bind(name)
                .bind(expected_current)
                .execute(&mut *tx)
                .await?;
                if done.rows_affected() != 1 {
                    return Err(StoreError::Conflict("upstream state changed"));
                }
                Self::insert_upstream_token_in(&mut tx, name, &pending.token_id, "minted", "pending", Some(pending.expires_at), now).await?;
                Self::append_in(&mut tx, audit, now).await?;
                tx.commit().await?;
                Ok(())
            }

            pub(crate) async fn upstream_switch_sql(&self, name: &str, pending_id: &str, secret: &SecretRecord, audit: AuditEvent, now: UnixTime) -> Result<()> {
                let mut tx = self.begin_write().await?;
                let old: Option<String> = sqlx::query("SELECT current_id FROM upstream_state WHERE name = $1 AND pending_id = $2")
                    .bind(name)
                    .bind(pending_id)
                    .fetch_optional(&mut *tx)
                    .await?
                    .map(|r| r.try_get("current_id"))
                    .transpose()?
                    .ok_or(StoreError::Conflict("upstream state changed"))?;
                sqlx::query(
                    "UPDATE upstream_state SET current_id = pending_id, current_sealed = pending_sealed, \
                     current_expires_at = pending_expires_at, last_rotation = $1, pending_id = NULL, \
                     pending_sealed = NULL, pending_expires_at = NULL, updated_at = $1 WHERE name = $2",
                )
                .bind(now)
                .bind(name)
                .execute(&mut *tx)
                .await?;
                Self::set_upstream_token_state_in(&mut tx, name, pending_id, "current").await?;
                if let Some(old) = old {
                    Self::queue_upstream_revoke_in(&mut tx, name, &old, now).await?;
                }
                // As at install: the reserved `upstream.<name>` follows the
                // switch in its transaction (not a handler's write).
                Self::put_secret_in(&mut tx, secret).await?;
                Self::append_in(&mut tx, audit, now).await?;
                tx.commit().await?;
                Ok(())
            }

            pub(crate) async fn upstream_discard_pending_sql(&self, name: &str, pending_id: &str, audit: AuditEvent, now: UnixTime) -> Result<()> {
                let mut tx = self.begin_write().await?;
                let done = sqlx::query(
                    "UPDATE upstream_state SET pending_id = NULL, pending_sealed = NULL, pending_expires_at = NULL, updated_at = $1 \
                     WHERE name = $2 AND pending_id = $3",
                )
                .bind(now)
                .bind(name)
                .bind(pending_id)
                .execute(&mut *tx)
                .await?;
                if done.rows_affected() != 1 {
                    return Err(StoreError::Conflict("upstream state changed"));
                }
                Self::queue_upstream_revoke_in(&mut tx, name, pending_id, now).await?;
                Self::append_in(&mut tx, audit, now).await?;
                tx.commit().await?;
                Ok(())
            }

            pub(crate) async fn upstream_revoke_done_sql(&self, name: &str, token_id: &str, state: UpstreamTokenState, audit: AuditEvent, now: UnixTime) -> Result<()> {
                let mut tx = self.begin_write().await?;
                let done = sqlx::query(
                    "UPDATE upstream_tokens SET state = $1, next_attempt_at = NULL \
                     WHERE upstream = $2 AND token_id = $3 AND state = 'pending_revoke'",
                )
                .bind(state.as_str())
                .bind(name)
                .bind(token_id)
                .execute(&mut *tx)
                .await?;
                if done.rows_affected() != 1 {
                    return Err(StoreError::Conflict("upstream token is not awaiting revocation"));
                }
                sqlx::query("DELETE FROM upstream_tokens WHERE upstream = $1 AND state IN ('revoked', 'expired') AND created_at < $2")
                    .bind(name)
                    .bind(now - 7 * 86_400)
                    .execute(&mut *tx)
                    .await?;
                Self::append_in(&mut tx, audit, now).await?;
                tx.commit().await?;
                Ok(())
            }

            pub(crate) async fn upstream_revoke_failed_sql(&self, name: &str, token_id: &str, next_attempt_at: UnixTime, error: &str, audit: AuditEvent, now: UnixTime) -> Result<()> {
                let mut tx = self.begin_write().await?;
                sqlx::query(
                    "UPDATE upstream_tokens SET attempts = attempts + 1, next_attempt_at = $1, last_error = $2 \
                     WHERE upstream = $3 AND token_id = $4 AND state = 'pending_revoke'",
                )
                .bind(next_attempt_at)
                .bind(error)
                .bind(name)
                .bind(token_id)
                .execute(&mut *tx)
                .await?;
                Self::append_in(&mut tx, audit, now).await?;
                tx.commit().await?;
                Ok(())
            }

            pub(crate) async fn owner_active_sql(&self, owner: &Email, now: UnixTime) -> Result<bool> {
                let row = sqlx::query(
                    "SELECT 1 AS one FROM jobs WHERE owner = $1 AND deleted_at IS NULL AND expires_at > $2 \
                     UNION ALL \
                     SELECT 1 AS one FROM issued_tokens t WHERE t.owner = $1 AND t.cls = 'session' AND t.exp > $2 \
                     AND NOT EXISTS (SELECT 1 FROM revocations r WHERE \
                       (r.kind = 'jti' AND r.jti = t.jti) \
                       OR (r.kind = 'owner' AND r.owner = t.owner AND r.not_before >= t.iat) \
                       OR (r.kind = 'subject' AND r.subject = t.subject AND (r.owner = '' OR r.owner = t.owner) AND r.not_before >= t.iat)) \
                     LIMIT 1",
                )
                .bind(owner.as_str())
                .bind(now)
                .fetch_optional(&self.pool)
                .await?;
                Ok(row.is_some())
            }

            pub(crate) async fn upstream_lock_sql(&self, name: &str) -> Result<Option<UpstreamLock>> {
                if !matches!($engine, Engine::Postgres) {
                    return Ok(Some(UpstreamLock(None)));
                }
                // Transaction-scoped: released on commit, rollback, drop, or
                // when a killed replica's connection goes away.
                let mut tx = self.pool.begin().await?;
                let won: bool = sqlx::query_scalar("SELECT pg_try_advisory_xact_lock($1)")
                    .bind(crate::sql_upstream::upstream_lock_key(name))
                    .fetch_one(&mut *tx)
                    .await?;
                Ok(won.then(|| UpstreamLock(Some(Box::new(tx)))))
            }

            pub(crate) async fn upstream_unlock_sql(&self, lock: UpstreamLock) -> Result<()> {
                if let Some(held) = lock.0 {
                    if let Ok(tx) = held.downcast::<Tx<'static>>() {
                        tx.rollback().await?;
                    }
                }
                Ok(())
            }
        }

        fn upstream_slot(id: Option<String>, sealed: Option<Vec<u8>>, expires_at: Option<i64>) -> Option<UpstreamSlot> {
            match (id, sealed, expires_at) {
                (Some(token_id), Some(sealed), Some(expires_at)) => Some(UpstreamSlot { token_id, sealed, expires_at }),
                _ => None,
            }
        }

        fn upstream_state_from_row(r: &DbRow) -> Result<UpstreamState> {
            let owner: String = r.try_get("owner")?;
            Ok(UpstreamState {
                name: r.try_get("name")?,
                owner: email_from_db(&owner)?,
                current: upstream_slot(r.try_get("current_id")?, r.try_get("current_sealed")?, r.try_get("current_expires_at")?),
                last_rotation: r.try_get("last_rotation")?,
                pending: upstream_slot(r.try_get("pending_id")?, r.try_get("pending_sealed")?, r.try_get("pending_expires_at")?),
                updated_at: r.try_get("updated_at")?,
            })
        }

        fn upstream_token_from_row(r: &DbRow) -> Result<UpstreamTokenRecord> {
            let state: String = r.try_get("state")?;
            Ok(UpstreamTokenRecord {
                upstream: r.try_get("upstream")?,
                token_id: r.try_get("token_id")?,
                origin: r.try_get("origin")?,
                state: UpstreamTokenState::parse(&state)
                    .ok_or_else(|| StoreError::Backend(format!("unknown upstream token state {state:?}")))?,
                attempts: r.try_get("attempts")?,
                next_attempt_at: r.try_get("next_attempt_at")?,
                last_error: r.try_get("last_error")?,
                created_at: r.try_get("created_at")?,
                expires_at: r.try_get("expires_at")?,
            })
        }

        impl $store {
            #[allow(clippy::too_many_arguments)]
            async fn insert_upstream_token_in(
                tx: &mut Tx<'_>,
                name: &str,
                token_id: &str,
                origin: &str,
                state: &str,
                expires_at: Option<UnixTime>,
                now: UnixTime,
            ) -> Result<()> {
                let next_attempt: Option<UnixTime> = (state == "pending_revoke").then_some(now);
                sqlx::query(
                    "INSERT INTO upstream_tokens (upstream, token_id, origin, state, attempts, next_attempt_at, last_error, created_at, expires_at) \
                     VALUES ($1, $2, $3, $4, 0, $5, NULL, $6, $7) \
                     ON CONFLICT (upstream, token_id) DO UPDATE SET state = excluded.state, next_attempt_at = excluded.next_attempt_at",
                )
                .bind(name)
                .bind(token_id)
                .bind(origin)
                .bind(state)
                .bind(next_attempt)
                .bind(now)
                .bind(expires_at)
                .execute(&mut **tx)
                .await?;
                Ok(())
            }

            async fn set_upstream_token_state_in(tx: &mut Tx<'_>, name: &str, token_id: &str, state: &str) -> Result<()> {
                sqlx::query("UPDATE upstream_tokens SET state = $1 WHERE upstream = $2 AND token_id = $3")
                    .bind(state)
                    .bind(name)
                    .bind(token_id)
                    .execute(&mut **tx)
                    .await?;
                Ok(())
            }

            async fn queue_upstream_revoke_in(tx: &mut Tx<'_>, name: &str, token_id: &str, now: UnixTime) -> Result<()> {
                sqlx::query(
                    "UPDATE upstream_tokens SET state = 'pending_revoke', next_attempt_at = $1 \
                     WHERE upstream = $2 AND token_id = $3 AND state IN ('pending', 'current')",
                )
                .bind(now)
                .bind(name)
                .bind(token_id)
                .execute(&mut **tx)
                .await?;
                Ok(())
            }
        }
    };
}

pub(crate) use sql_upstream;
