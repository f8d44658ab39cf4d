//! The installation's egress CA (SPEC §6), written once for both engines
//! like `sql_store.rs` and expanded beside it: the trait methods there
//! delegate here.
//!
//! Creation is one `INSERT … ON CONFLICT DO NOTHING` of generation 1:
//! replicas starting at once race on the primary key, exactly one row
//! lands (PostgreSQL makes the second insert wait for the first to commit,
//! SQLite's write transaction serialises them), and every loser reads the
//! winner's row back. A rotation inserts the next generation under the
//! same rule, so two concurrent rotations cannot both win.

macro_rules! sql_egress_ca {
    ($store:ty) => {
        impl $store {
            fn egress_ca_from_row(r: &DbRow) -> Result<EgressCaRecord> {
                Ok(EgressCaRecord {
                    generation: r.try_get("generation")?,
                    cert_pem: r.try_get("cert_pem")?,
                    cross_pem: r.try_get("cross_pem")?,
                    sealed_key: r.try_get("sealed_key")?,
                    master_kid: r.try_get("master_kid")?,
                    created_at: r.try_get("created_at")?,
                    retired_at: r.try_get("retired_at")?,
                    trust_until: r.try_get("trust_until")?,
                })
            }

            async fn insert_egress_ca_in(tx: &mut Tx<'_>, ca: &EgressCaRecord) -> Result<bool> {
                let done = sqlx::query(
                    "INSERT INTO egress_cas (generation, cert_pem, cross_pem, sealed_key, master_kid, created_at, retired_at, trust_until) \
                     VALUES ($1, $2, $3, $4, $5, $6, NULL, NULL) ON CONFLICT (generation) DO NOTHING",
                )
                .bind(ca.generation)
                .bind(&ca.cert_pem)
                .bind(&ca.cross_pem)
                .bind(&ca.sealed_key)
                .bind(&ca.master_kid)
                .bind(ca.created_at)
                .execute(&mut **tx)
                .await?;
                Ok(done.rows_affected() == 1)
            }

            pub(crate) async fn egress_cas_sql(&self) -> Result<Vec<EgressCaRecord>> {
                let rows = sqlx::query("SELECT * FROM egress_cas ORDER BY generation DESC")
                    .fetch_all(&self.pool)
                    .await?;
                rows.iter().map(Self::egress_ca_from_row).collect()
            }

            pub(crate) async fn create_egress_ca_sql(&self, ca: &EgressCaRecord, audit: AuditEvent, now: UnixTime) -> Result<bool> {
                if ca.generation != 1 {
                    return Err(StoreError::Conflict("the first egress CA is generation 1"));
                }
                let mut tx = self.begin_write().await?;
                if !Self::insert_egress_ca_in(&mut tx, ca).await? {
                    tx.rollback().await?;
                    return Ok(false);
                }
                Self::append_in(&mut tx, audit, now).await?;
                tx.commit().await?;
                Ok(true)
            }

            pub(crate) async fn rotate_egress_ca_sql(&self, new: &EgressCaRecord, trust_until: UnixTime, audit: AuditEvent, now: UnixTime) -> Result<()> {
                let mut tx = self.begin_write().await?;
                let current: Option<i64> = sqlx::query_scalar("SELECT MAX(generation) FROM egress_cas")
                    .fetch_one(&mut *tx)
                    .await?;
                if !current.is_some_and(|g| g + 1 == new.generation) {
                    return Err(StoreError::Conflict("the egress CA changed meanwhile: run the rotation again"));
                }
                if !Self::insert_egress_ca_in(&mut tx, new).await? {
                    return Err(StoreError::Conflict("the egress CA changed meanwhile: run the rotation again"));
                }
                sqlx::query(
                    "UPDATE egress_cas SET retired_at = $1, trust_until = $2 WHERE retired_at IS NULL AND generation < $3",
                )
                .bind(now)
                .bind(trust_until)
                .bind(new.generation)
                .execute(&mut *tx)
                .await?;
                // CAs whose overlap has ended are of no use to anyone.
                sqlx::query("DELETE FROM egress_cas WHERE retired_at IS NOT NULL AND trust_until < $1")
                    .bind(now)
                    .execute(&mut *tx)
                    .await?;
                Self::append_in(&mut tx, audit, now).await?;
                tx.commit().await?;
                Ok(())
            }
        }
    };
}

pub(crate) use sql_egress_ca;
