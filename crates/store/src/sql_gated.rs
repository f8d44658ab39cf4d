//! The store's half of approval gates, expanded inside `sql_store!` for
//! each engine (see `sql_store.rs` for why one body serves both).
//!
//! Exactly-once execution rests on one statement: an approved request is
//! moved to `executed` by `UPDATE ... WHERE status = 'approved'` in the
//! same transaction as the action itself. Whoever's update matches runs
//! the action and commits both; every other replica or request matches
//! nothing and does nothing. A crash before the commit leaves the request
//! `approved`, to be run by the next sweep.
//!
//! A verb that calls out to another system cannot put that call inside a
//! transaction, so it claims first: `approved → executing` (the same
//! one-winner `UPDATE`), then the call, then `executing → executed` with
//! the action, or `failed`. A crash after the claim leaves it `executing`;
//! it is never run again (the call may have happened), and the sweeper
//! marks it `failed` ("interrupted") once the claim is old.

/// Which pending approvals a change cuts from under them.
pub(crate) enum ExpireWhere<'a> {
    /// Requested by this job.
    Job(&'a str),
    /// Requested with this token.
    Jti(&'a str),
    /// Requested by this agent or job subject (or any job of the agent).
    Subject {
        owner: Option<&'a gatehouse_domain::Email>,
        subject: &'a str,
    },
    /// Every open approval of this owner (tokens revoked, or deprovisioned).
    Owner(&'a gatehouse_domain::Email),
    /// Pending past their expiry time.
    TtlPassed,
}

/// The audit record of an approval the system expired.
pub(crate) fn expiry_event(
    id: &str,
    owner: &str,
    verb: &str,
    why: &str,
) -> gatehouse_domain::audit::AuditEvent {
    gatehouse_domain::audit::AuditEvent {
        actor: "gatehouse".into(),
        cls: "system".into(),
        owner: owner.into(),
        action: "approval.expire".into(),
        target: format!("{id} {verb}"),
        outcome: format!("expired: {why}"),
        request_id: String::new(),
    }
}

macro_rules! gated_helpers {
    ($store:ty, $db:ty, $notify_sql:literal) => {
        use crate::approval_model::*;
        use gatehouse_domain::approvals::{ApprovalStatus, Decision, Tally};
        use crate::sql_gated::{expiry_event, ExpireWhere};

        fn approval_from_row(r: &DbRow) -> Result<ApprovalRecord> {
            let owner: String = r.try_get("owner")?;
            let cls: String = r.try_get("requester_cls")?;
            let status: String = r.try_get("status")?;
            let required: i64 = r.try_get("required")?;
            Ok(ApprovalRecord {
                id: r.try_get("id")?,
                owner: email_from_db(&owner)?,
                verb: r.try_get("verb")?,
                params: r.try_get("params")?,
                params_digest: r.try_get("params_digest")?,
                sealed: r.try_get("sealed")?,
                requester: Requester {
                    class: gatehouse_domain::CredentialClass::parse(&cls)
                        .ok_or_else(|| StoreError::Backend(format!("unknown requester class {cls:?}")))?,
                    subject: r.try_get("requester_subject")?,
                    jti: r.try_get("requester_jti")?,
                    agent: r.try_get("requester_agent")?,
                    job: r.try_get("requester_job")?,
                },
                status: ApprovalStatus::parse(&status)
                    .ok_or_else(|| StoreError::Backend(format!("unknown approval status {status:?}")))?,
                required: u32::try_from(required).unwrap_or(1),
                created_at: r.try_get("created_at")?,
                expires_at: r.try_get("expires_at")?,
                updated_at: r.try_get("updated_at")?,
                result: r.try_get("result")?,
                sealed_result: r.try_get("sealed_result")?,
                error: r.try_get("error")?,
                decisions: Vec::new(),
            })
        }

        fn decision_from_row(r: &DbRow) -> Result<ApprovalDecision> {
            let decision: String = r.try_get("decision")?;
            Ok(ApprovalDecision {
                decider: r.try_get("decider")?,
                decision: Decision::parse(&decision)
                    .ok_or_else(|| StoreError::Backend(format!("unknown decision {decision:?}")))?,
                reason: r.try_get("reason")?,
                decided_at: r.try_get("decided_at")?,
            })
        }

        impl $store {
            async fn decisions_in<'e, E>(executor: E, id: &str) -> Result<Vec<ApprovalDecision>>
            where
                E: sqlx::Executor<'e, Database = $db>,
            {
                let rows = sqlx::query("SELECT * FROM approval_decisions WHERE approval_id = $1 ORDER BY decided_at, decider")
                    .bind(id)
                    .fetch_all(executor)
                    .await?;
                rows.iter().map(decision_from_row).collect()
            }

            async fn put_secret_in(tx: &mut Tx<'_>, s: &SecretRecord) -> Result<PutOutcome> {
                let existed = sqlx::query("SELECT 1 AS one FROM secrets WHERE owner = $1 AND name = $2")
                    .bind(s.owner.as_str())
                    .bind(&s.name)
                    .fetch_optional(&mut **tx)
                    .await?
                    .is_some();
                sqlx::query(
                    "INSERT INTO secrets (owner, name, sealed, allowed_hosts, inject, created_at, updated_at) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7) \
                     ON CONFLICT (owner, name) DO UPDATE SET sealed = excluded.sealed, \
                     allowed_hosts = excluded.allowed_hosts, inject = excluded.inject, updated_at = excluded.updated_at",
                )
                .bind(s.owner.as_str())
                .bind(&s.name)
                .bind(&s.sealed)
                .bind(&s.allowed_hosts)
                .bind(&s.inject)
                .bind(s.created_at)
                .bind(s.updated_at)
                .execute(&mut **tx)
                .await?;
                Ok(if existed { PutOutcome::Replaced } else { PutOutcome::Created })
            }

            /// Persists a revocation and tells every replica, in `tx`.
            /// Records a revocation. A subject or owner watermark is
            /// raised to the latest `iat` already issued in its scope
            /// (read under the chain-head lock), so it covers every token
            /// issued before it whatever the second boundaries; its expiry
            /// moves with it, so the row outlives the tokens it covers.
            async fn revoke_in(tx: &mut Tx<'_>, kind: RevocationKind, not_before: UnixTime, expires_at: UnixTime, now: UnixTime) -> Result<Revocation> {
                Self::lock_chain_in(tx).await?;
                let latest = Self::latest_issued_in(tx, &kind).await?;
                let raised = gatehouse_domain::token::watermark::revocation_watermark(not_before, latest);
                let expires_at = expires_at.saturating_add(raised - not_before);
                let not_before = raised;
                let (k, owner, subject, jti) = kind_to_columns(&kind);
                let row = sqlx::query(
                    "INSERT INTO revocations (kind, owner, subject, jti, not_before, expires_at, created_at) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id",
                )
                .bind(k)
                .bind(owner)
                .bind(subject)
                .bind(jti)
                .bind(not_before)
                .bind(expires_at)
                .bind(now)
                .fetch_one(&mut **tx)
                .await?;
                let id: i64 = row.try_get("id")?;
                let revocation = Revocation { id, kind, not_before, expires_at };
                sqlx::query($notify_sql)
                    .bind(crate::sql_store::encode_notification(&revocation))
                    .execute(&mut **tx)
                    .await?;
                Ok(revocation)
            }

            /// Expires the open approvals `which` names, one audit record
            /// each. Callers hold the write transaction (and, on
            /// PostgreSQL, the chain head) already.
            async fn expire_approvals_in(tx: &mut Tx<'_>, which: ExpireWhere<'_>, why: &str, now: UnixTime) -> Result<Vec<ApprovalRecord>> {
                let (condition, args): (&str, Vec<String>) = match which {
                    ExpireWhere::Job(job) => ("status = 'pending' AND requester_job = $2", vec![job.to_string()]),
                    ExpireWhere::Jti(jti) => ("status = 'pending' AND requester_jti = $2", vec![jti.to_string()]),
                    ExpireWhere::Subject { owner: Some(owner), subject } => (
                        "status = 'pending' AND owner = $2 AND (requester_subject = $3 OR requester_agent = $3)",
                        vec![owner.as_str().to_string(), subject.to_string()],
                    ),
                    ExpireWhere::Subject { owner: None, subject } => (
                        "status = 'pending' AND (requester_subject = $2 OR requester_agent = $2)",
                        vec![subject.to_string()],
                    ),
                    ExpireWhere::Owner(owner) => (
                        "status IN ('pending', 'approved') AND owner = $2",
                        vec![owner.as_str().to_string()],
                    ),
                    ExpireWhere::TtlPassed => ("status = 'pending' AND expires_at <= $2", Vec::new()),
                };
                let sql = format!("UPDATE approvals SET status = 'expired', updated_at = $1 WHERE {condition} RETURNING *");
                let mut query = sqlx::query(&sql).bind(now);
                if args.is_empty() {
                    query = query.bind(now);
                }
                for arg in &args {
                    query = query.bind(arg);
                }
                let rows = query.fetch_all(&mut **tx).await?;
                let expired = rows.iter().map(approval_from_row).collect::<Result<Vec<_>>>()?;
                for a in &expired {
                    Self::append_in(tx, expiry_event(&a.id, a.owner.as_str(), &a.verb, why), now).await?;
                }
                Ok(expired)
            }

            /// Deletes the owner's live jobs (one, or all), drops their
            /// placeholders, revokes their tokens and expires what they
            /// asked for.
            async fn delete_jobs_in(tx: &mut Tx<'_>, owner: &Email, only: Option<&str>, now: UnixTime) -> Result<(usize, Vec<Revocation>)> {
                let rows = match only {
                    Some(id) => sqlx::query("UPDATE jobs SET deleted_at = $1 WHERE owner = $2 AND deleted_at IS NULL AND id = $3 RETURNING id, token_jti, expires_at")
                        .bind(now)
                        .bind(owner.as_str())
                        .bind(id)
                        .fetch_all(&mut **tx)
                        .await?,
                    None => sqlx::query("UPDATE jobs SET deleted_at = $1 WHERE owner = $2 AND deleted_at IS NULL RETURNING id, token_jti, expires_at")
                        .bind(now)
                        .bind(owner.as_str())
                        .fetch_all(&mut **tx)
                        .await?,
                };
                let mut revocations = Vec::with_capacity(rows.len());
                for row in &rows {
                    let id: String = row.try_get("id")?;
                    let jti: String = row.try_get("token_jti")?;
                    let expires_at: i64 = row.try_get("expires_at")?;
                    sqlx::query("DELETE FROM placeholders WHERE job_id = $1").bind(&id).execute(&mut **tx).await?;
                    Self::expire_approvals_in(tx, ExpireWhere::Job(&id), "its job was deleted", now).await?;
                    if expires_at > now {
                        revocations.push(Self::revoke_in(tx, RevocationKind::Jti { jti }, now, expires_at, now).await?);
                    }
                }
                Ok((rows.len(), revocations))
            }

            /// The action alone, inside `tx`; `Failed` when its target is gone.
            async fn apply_gated_in(tx: &mut Tx<'_>, action: &GatedAction, now: UnixTime) -> Result<ActionEffect> {
                Ok(match action {
                    GatedAction::PutSecret(s) => {
                        if !Self::owner_exists_in(tx, &s.owner).await? {
                            return Ok(ActionEffect::Failed("the owner no longer exists".into()));
                        }
                        ActionEffect::Secret(Self::put_secret_in(tx, s).await?)
                    }
                    GatedAction::DeleteSecret { owner, name } => {
                        let done = sqlx::query("DELETE FROM secrets WHERE owner = $1 AND name = $2")
                            .bind(owner.as_str())
                            .bind(name)
                            .execute(&mut **tx)
                            .await?;
                        if done.rows_affected() == 1 {
                            ActionEffect::Done
                        } else {
                            ActionEffect::Failed(format!("no secret named {name}"))
                        }
                    }
                    GatedAction::MintToken(t) => {
                        if !Self::owner_exists_in(tx, &t.owner).await? {
                            return Ok(ActionEffect::Failed("the owner no longer exists".into()));
                        }
                        Self::insert_issued(tx, t).await?;
                        ActionEffect::Done
                    }
                    GatedAction::DeleteAllJobs { owner } => {
                        let (count, revocations) = Self::delete_jobs_in(tx, owner, None, now).await?;
                        ActionEffect::JobsDeleted { count, revocations }
                    }
                    GatedAction::DeleteJob { owner, id } => match Self::delete_jobs_in(tx, owner, Some(id), now).await? {
                        (0, _) => ActionEffect::Failed("no such job".into()),
                        (_, revoked) => ActionEffect::Revoked(revoked),
                    },
                    GatedAction::RetireUpstream { owner, name, expected_current, secret_name } => {
                        let current: Option<Option<String>> = sqlx::query("SELECT current_id FROM upstream_state WHERE name = $1 AND owner = $2")
                            .bind(name)
                            .bind(owner.as_str())
                            .fetch_optional(&mut **tx)
                            .await?
                            .map(|r| r.try_get("current_id"))
                            .transpose()?;
                        match current.flatten() {
                            None => return Ok(ActionEffect::Failed(format!("{name} has no credential to revoke"))),
                            Some(id) if id != *expected_current => {
                                return Ok(ActionEffect::Failed(format!("{name} rotated while its credential was being revoked; ask again")))
                            }
                            Some(_) => {}
                        }
                        sqlx::query("UPDATE upstream_tokens SET state = 'revoked', next_attempt_at = NULL WHERE upstream = $1 AND state IN ('pending', 'current', 'pending_revoke')")
                            .bind(name)
                            .execute(&mut **tx)
                            .await?;
                        sqlx::query(
                            "UPDATE upstream_state SET current_id = NULL, current_sealed = NULL, current_expires_at = NULL, \
                             pending_id = NULL, pending_sealed = NULL, pending_expires_at = NULL, updated_at = $1 WHERE name = $2",
                        )
                        .bind(now)
                        .bind(name)
                        .execute(&mut **tx)
                        .await?;
                        sqlx::query("DELETE FROM secrets WHERE owner = $1 AND name = $2")
                            .bind(owner.as_str())
                            .bind(secret_name)
                            .execute(&mut **tx)
                            .await?;
                        ActionEffect::Done
                    }
                    GatedAction::SetAgentEgress { owner, agent, allow_hosts } => {
                        let done = sqlx::query("UPDATE agents SET allow_hosts = $1 WHERE owner = $2 AND name = $3")
                            .bind(allow_hosts)
                            .bind(owner.as_str())
                            .bind(agent)
                            .execute(&mut **tx)
                            .await?;
                        if done.rows_affected() == 1 { ActionEffect::Done } else { ActionEffect::Failed(format!("no agent named {agent}")) }
                    }
                    GatedAction::SetAgentSecrets { owner, agent, secrets } => {
                        let done = sqlx::query("UPDATE agents SET secrets = $1 WHERE owner = $2 AND name = $3")
                            .bind(secrets)
                            .bind(owner.as_str())
                            .bind(agent)
                            .execute(&mut **tx)
                            .await?;
                        if done.rows_affected() == 1 { ActionEffect::Done } else { ActionEffect::Failed(format!("no agent named {agent}")) }
                    }
                    GatedAction::PutMcpServer(m) => {
                        if !Self::owner_exists_in(tx, &m.owner).await? {
                            return Ok(ActionEffect::Failed("the owner no longer exists".into()));
                        }
                        let existed = sqlx::query("SELECT 1 AS one FROM mcp_servers WHERE owner = $1 AND name = $2")
                            .bind(m.owner.as_str())
                            .bind(&m.name)
                            .fetch_optional(&mut **tx)
                            .await?
                            .is_some();
                        sqlx::query(
                            "INSERT INTO mcp_servers (owner, name, url, auth, tools, created_at, updated_at) \
                             VALUES ($1, $2, $3, $4, $5, $6, $7) \
                             ON CONFLICT (owner, name) DO UPDATE SET url = excluded.url, auth = excluded.auth, \
                             tools = excluded.tools, updated_at = excluded.updated_at",
                        )
                        .bind(m.owner.as_str())
                        .bind(&m.name)
                        .bind(&m.url)
                        .bind(&m.auth)
                        .bind(&m.tools)
                        .bind(m.created_at)
                        .bind(m.updated_at)
                        .execute(&mut **tx)
                        .await?;
                        ActionEffect::McpServer(if existed { PutOutcome::Replaced } else { PutOutcome::Created })
                    }
                    GatedAction::RecordMcpCall => ActionEffect::Done,
                    GatedAction::CreateJob { job, placeholders, token } => {
                        let agent = sqlx::query("SELECT 1 AS one FROM agents WHERE owner = $1 AND name = $2")
                            .bind(job.owner.as_str())
                            .bind(&job.agent)
                            .fetch_optional(&mut **tx)
                            .await?;
                        if agent.is_none() {
                            return Ok(ActionEffect::Failed(format!("no agent named {}", job.agent)));
                        }
                        for g in &job.grants {
                            let exists = sqlx::query("SELECT 1 AS one FROM secrets WHERE owner = $1 AND name = $2")
                                .bind(job.owner.as_str())
                                .bind(&g.secret)
                                .fetch_optional(&mut **tx)
                                .await?;
                            if exists.is_none() {
                                return Ok(ActionEffect::Failed(format!("grant {}: its secret no longer exists", g.env_var)));
                            }
                        }
                        Self::create_job_in(tx, job, placeholders, token).await?;
                        ActionEffect::Done
                    }
                    GatedAction::DeprovisionOwner { owner, token_expiry } => {
                        if !Self::owner_exists_in(tx, owner).await? {
                            return Ok(ActionEffect::Failed(format!("no owner {owner}")));
                        }
                        Self::expire_approvals_in(tx, ExpireWhere::Owner(owner), "the owner was deprovisioned", now).await?;
                        let revocation = Self::revoke_in(tx, RevocationKind::Owner { owner: owner.clone() }, now, *token_expiry, now).await?;
                        // Secrets, jobs (grants, placeholders), agents, hooks
                        // and login codes go with the owner row (ON DELETE
                        // CASCADE), and with it the wrapped data key: what
                        // was sealed under it cannot be opened again.
                        sqlx::query("DELETE FROM owners WHERE email = $1").bind(owner.as_str()).execute(&mut **tx).await?;
                        ActionEffect::Revoked(vec![revocation])
                    }
                })
            }

            /// A job with its grants, placeholders and token row, in `tx`.
            async fn create_job_in(tx: &mut Tx<'_>, job: &JobRecord, placeholders: &[PlaceholderRecord], token: &IssuedToken) -> Result<()> {
                sqlx::query(
                    "INSERT INTO jobs (id, owner, agent, created_by, token_jti, packages, allow_hosts, grant_count, \
                     created_at, expires_at, deleted_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, NULL)",
                )
                .bind(&job.id)
                .bind(job.owner.as_str())
                .bind(&job.agent)
                .bind(&job.created_by)
                .bind(&job.token_jti)
                .bind(&job.packages)
                .bind(&job.allow_hosts)
                .bind(job.grants.len() as i64)
                .bind(job.created_at)
                .bind(job.expires_at)
                .execute(&mut **tx)
                .await?;
                for g in &job.grants {
                    sqlx::query("INSERT INTO job_grants (job_id, env_var, secret, mode) VALUES ($1, $2, $3, $4)")
                        .bind(&job.id)
                        .bind(&g.env_var)
                        .bind(&g.secret)
                        .bind(g.mode.as_str())
                        .execute(&mut **tx)
                        .await?;
                }
                for p in placeholders {
                    sqlx::query(
                        "INSERT INTO placeholders (placeholder, owner, job_id, secret, allowed_hosts, expires_at) \
                         VALUES ($1, $2, $3, $4, $5, $6)",
                    )
                    .bind(&p.placeholder)
                    .bind(p.owner.as_str())
                    .bind(&p.job_id)
                    .bind(&p.secret)
                    .bind(&p.allowed_hosts)
                    .bind(p.expires_at)
                    .execute(&mut **tx)
                    .await?;
                }
                Self::insert_issued(tx, token).await?;
                Ok(())
            }

            async fn owner_exists_in(tx: &mut Tx<'_>, owner: &Email) -> Result<bool> {
                Ok(sqlx::query("SELECT 1 AS one FROM owners WHERE email = $1")
                    .bind(owner.as_str())
                    .fetch_optional(&mut **tx)
                    .await?
                    .is_some())
            }
        }
    };
}

macro_rules! gated_methods {
    ($store:ty) => {
        impl $store {
        async fn gated_create_approval(&self, a: &ApprovalRecord, audit: AuditEvent, now: UnixTime) -> Result<()> {
            let mut tx = self.begin_write().await?;
            sqlx::query(
                "INSERT INTO approvals (id, owner, verb, params, params_digest, sealed, requester_cls, requester_subject, \
                 requester_jti, requester_agent, requester_job, status, required, created_at, expires_at, updated_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)",
            )
            .bind(&a.id)
            .bind(a.owner.as_str())
            .bind(&a.verb)
            .bind(&a.params)
            .bind(&a.params_digest)
            .bind(&a.sealed)
            .bind(a.requester.class.as_str())
            .bind(&a.requester.subject)
            .bind(&a.requester.jti)
            .bind(&a.requester.agent)
            .bind(&a.requester.job)
            .bind(a.status.as_str())
            .bind(i64::from(a.required))
            .bind(a.created_at)
            .bind(a.expires_at)
            .bind(now)
            .execute(&mut *tx)
            .await?;
            Self::append_in(&mut tx, audit, now).await?;
            tx.commit().await?;
            Ok(())
        }

        async fn gated_approval(&self, id: &str) -> Result<Option<ApprovalRecord>> {
            let Some(row) = sqlx::query("SELECT * FROM approvals WHERE id = $1").bind(id).fetch_optional(&self.pool).await? else {
                return Ok(None);
            };
            let mut approval = approval_from_row(&row)?;
            approval.decisions = Self::decisions_in(&self.pool, id).await?;
            Ok(Some(approval))
        }

        async fn gated_approvals(&self, filter: &ApprovalFilter) -> Result<Vec<ApprovalRecord>> {
            let mut sql = String::from("SELECT * FROM approvals WHERE 1 = 1");
            let mut args: Vec<String> = Vec::new();
            let mut push = |column: &str, value: &str, sql: &mut String| {
                args.push(value.to_string());
                sql.push_str(&format!(" AND {column} = ${}", args.len()));
            };
            if let Some(owner) = &filter.owner {
                push("owner", owner.as_str(), &mut sql);
            }
            if let Some(status) = filter.status {
                push("status", status.as_str(), &mut sql);
            }
            if let Some((class, subject)) = &filter.requester {
                push("requester_cls", class.as_str(), &mut sql);
                push("requester_subject", subject, &mut sql);
            }
            sql.push_str(&format!(" ORDER BY created_at DESC, id LIMIT {}", filter.limit.clamp(1, 1000)));
            let mut query = sqlx::query(&sql);
            for arg in &args {
                query = query.bind(arg);
            }
            let rows = query.fetch_all(&self.pool).await?;
            let mut out = rows.iter().map(approval_from_row).collect::<Result<Vec<_>>>()?;
            for a in &mut out {
                a.decisions = Self::decisions_in(&self.pool, &a.id).await?;
            }
            Ok(out)
        }

        async fn gated_decide_approval(&self, id: &str, d: &ApprovalDecision, audit: AuditEvent, now: UnixTime) -> Result<DecideResult> {
            let mut tx = self.begin_write().await?;
            // Touching the row takes its lock (PostgreSQL; SQLite holds the
            // database write lock already): concurrent decisions on one
            // approval, from any replica, are counted one after another.
            let Some(row) = sqlx::query("UPDATE approvals SET updated_at = $1 WHERE id = $2 RETURNING *")
                .bind(now)
                .bind(id)
                .fetch_optional(&mut *tx)
                .await?
            else {
                return Ok(DecideResult::NotFound);
            };
            let approval = approval_from_row(&row)?;
            if approval.status != ApprovalStatus::Pending {
                return Ok(DecideResult::NotPending(approval.status));
            }
            if approval.expires_at <= now {
                Self::expire_approvals_in(&mut tx, ExpireWhere::TtlPassed, "its time to live passed", now).await?;
                tx.commit().await?;
                return Ok(DecideResult::NotPending(ApprovalStatus::Expired));
            }
            let mut tally = Tally::new(approval.required);
            for earlier in Self::decisions_in(&mut *tx, id).await? {
                tally.record(&earlier.decider, earlier.decision);
            }
            let Ok(status) = tally.add(&d.decider, d.decision) else {
                return Ok(DecideResult::AlreadyDecided);
            };
            sqlx::query("INSERT INTO approval_decisions (approval_id, decider, decision, reason, decided_at) VALUES ($1, $2, $3, $4, $5)")
                .bind(id)
                .bind(&d.decider)
                .bind(d.decision.as_str())
                .bind(&d.reason)
                .bind(d.decided_at)
                .execute(&mut *tx)
                .await?;
            if status != ApprovalStatus::Pending {
                sqlx::query("UPDATE approvals SET status = $1 WHERE id = $2")
                    .bind(status.as_str())
                    .bind(id)
                    .execute(&mut *tx)
                    .await?;
            }
            Self::append_in(&mut tx, audit, now).await?;
            tx.commit().await?;
            Ok(DecideResult::Recorded(status))
        }

        async fn gated_run_gated(&self, action: &GatedAction, completion: Option<&Completion>, audit: Vec<AuditEvent>, now: UnixTime) -> Result<RunResult> {
            let mut tx = self.begin_write().await?;
            if let Some(c) = completion {
                let from = if c.claimed { ApprovalStatus::Executing } else { ApprovalStatus::Approved };
                let claimed = sqlx::query(
                    "UPDATE approvals SET status = 'executed', result = $1, sealed_result = $2, updated_at = $3 \
                     WHERE id = $4 AND status = $5",
                )
                .bind(&c.result)
                .bind(&c.sealed_result)
                .bind(now)
                .bind(&c.approval_id)
                .bind(from.as_str())
                .execute(&mut *tx)
                .await?;
                if claimed.rows_affected() != 1 {
                    return Ok(RunResult::NotApproved);
                }
            }
            let effect = Self::apply_gated_in(&mut tx, action, now).await?;
            if let ActionEffect::Failed(_) = effect {
                // Dropping the transaction rolls back whatever the action
                // began: a failed action leaves nothing half-done.
                return Ok(RunResult::Ran(effect));
            }
            for event in audit {
                Self::append_in(&mut tx, event, now).await?;
            }
            tx.commit().await?;
            Ok(RunResult::Ran(effect))
        }

        async fn gated_fail_approval(&self, id: &str, error: &str, audit: AuditEvent, now: UnixTime) -> Result<bool> {
            let mut tx = self.begin_write().await?;
            let done = sqlx::query("UPDATE approvals SET status = 'failed', error = $1, updated_at = $2 WHERE id = $3 AND status IN ('approved', 'executing')")
                .bind(error)
                .bind(now)
                .bind(id)
                .execute(&mut *tx)
                .await?;
            if done.rows_affected() != 1 {
                return Ok(false);
            }
            Self::append_in(&mut tx, audit, now).await?;
            tx.commit().await?;
            Ok(true)
        }

        async fn gated_claim_approval(&self, id: &str, now: UnixTime) -> Result<bool> {
            // One statement, one winner: PostgreSQL re-checks the WHERE
            // after waiting for a concurrent claimer's row lock; SQLite
            // runs writers one at a time.
            let done = sqlx::query("UPDATE approvals SET status = 'executing', updated_at = $1 WHERE id = $2 AND status = 'approved'")
                .bind(now)
                .bind(id)
                .execute(&self.pool)
                .await?;
            Ok(done.rows_affected() == 1)
        }

        async fn gated_fail_interrupted(&self, claimed_before: UnixTime, now: UnixTime) -> Result<Vec<ApprovalRecord>> {
            let due = sqlx::query("SELECT 1 AS one FROM approvals WHERE status = 'executing' AND updated_at <= $1 LIMIT 1")
                .bind(claimed_before)
                .fetch_optional(&self.pool)
                .await?;
            if due.is_none() {
                return Ok(Vec::new());
            }
            let mut tx = self.begin_write().await?;
            let rows = sqlx::query(
                "UPDATE approvals SET status = 'failed', error = 'interrupted', updated_at = $1 \
                 WHERE status = 'executing' AND updated_at <= $2 RETURNING *",
            )
            .bind(now)
            .bind(claimed_before)
            .fetch_all(&mut *tx)
            .await?;
            let failed = rows.iter().map(approval_from_row).collect::<Result<Vec<_>>>()?;
            for a in &failed {
                let event = gatehouse_domain::audit::AuditEvent {
                    actor: "gatehouse".into(),
                    cls: "system".into(),
                    owner: a.owner.as_str().into(),
                    action: "approval.fail".into(),
                    target: format!("{} {}", a.id, a.verb),
                    outcome: "failed: interrupted".into(),
                    request_id: String::new(),
                };
                Self::append_in(&mut tx, event, now).await?;
            }
            tx.commit().await?;
            Ok(failed)
        }

        async fn gated_take_approval_result(&self, id: &str, jti: &str, now: UnixTime) -> Result<bool> {
            let done = sqlx::query(
                "UPDATE approvals SET sealed_result = NULL, updated_at = $1 \
                 WHERE id = $2 AND requester_jti = $3 AND status = 'executed' AND sealed_result IS NOT NULL",
            )
            .bind(now)
            .bind(id)
            .bind(jti)
            .execute(&self.pool)
            .await?;
            Ok(done.rows_affected() == 1)
        }

        async fn gated_expire_approvals(&self, now: UnixTime) -> Result<Vec<ApprovalRecord>> {
            let due = sqlx::query("SELECT 1 AS one FROM approvals WHERE status = 'pending' AND expires_at <= $1 LIMIT 1")
                .bind(now)
                .fetch_optional(&self.pool)
                .await?;
            if due.is_none() {
                return Ok(Vec::new());
            }
            let mut tx = self.begin_write().await?;
            let expired = Self::expire_approvals_in(&mut tx, ExpireWhere::TtlPassed, "its time to live passed", now).await?;
            tx.commit().await?;
            Ok(expired)
        }

        async fn gated_approved_approvals(&self, limit: i64) -> Result<Vec<ApprovalRecord>> {
            let rows = sqlx::query("SELECT * FROM approvals WHERE status = 'approved' ORDER BY updated_at LIMIT $1")
                .bind(limit)
                .fetch_all(&self.pool)
                .await?;
            rows.iter().map(approval_from_row).collect()
        }

        async fn gated_agents(&self, owner: &Email) -> Result<Vec<AgentRecord>> {
            let rows = sqlx::query("SELECT name, allow_hosts, secrets, created_at FROM agents WHERE owner = $1 ORDER BY name")
                .bind(owner.as_str())
                .fetch_all(&self.pool)
                .await?;
            rows.iter()
                .map(|r| Ok(AgentRecord {
                    name: r.try_get("name")?,
                    allow_hosts: r.try_get("allow_hosts")?,
                    secrets: r.try_get("secrets")?,
                    created_at: r.try_get("created_at")?,
                }))
                .collect()
        }

        async fn gated_secret_granted_to_agent(&self, owner: &Email, agent: &str, secret: &str) -> Result<bool> {
            Ok(sqlx::query(
                "SELECT 1 AS one FROM job_grants g JOIN jobs j ON j.id = g.job_id \
                 WHERE j.owner = $1 AND j.agent = $2 AND j.deleted_at IS NULL AND g.secret = $3 LIMIT 1",
            )
            .bind(owner.as_str())
            .bind(agent)
            .bind(secret)
            .fetch_optional(&self.pool)
            .await?
            .is_some())
        }
        }
    };
}

pub(crate) use {gated_helpers, gated_methods};
