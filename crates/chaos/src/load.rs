//! The load: the installation the agents work in (an operator, an agent,
//! a secret bound to the swap host, one job per agent, an api token that
//! asks for approvals), the agents themselves, and the revocation prober.
//!
//! Every agent loops over its operations, each on the replica the
//! balancer picks; approvals are requested on one replica and decided on
//! another. What was acknowledged (a `2xx` write) is remembered, to be
//! found in the store at the end.

use std::collections::{BTreeSet, HashMap};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};
use serde_json::{json, Value};

use crate::checks::{self, Violations};
use crate::cluster::{Balancer, Target};
use crate::stats::{Op, Recorder};
use crate::upstream::{SWAP_HOST, TOKEN_OWNER, TUNNEL_HOST};

pub const OPERATOR: &str = TOKEN_OWNER;

/// A job an agent runs as.
#[derive(Clone)]
pub struct Job {
    pub token: String,
    pub placeholder: String,
}

/// What the agents share.
pub struct World {
    pub http: reqwest::Client,
    pub session: String,
    /// An api token with `secrets:write`: its writes are held for approval.
    pub requester: String,
    pub jobs: Vec<Job>,
    /// The upstream test CA and every CA the replicas serve.
    pub roots: Mutex<Vec<String>>,
    pub upstream_port: u16,
    pub lb: Arc<Balancer>,
    pub rec: Arc<Recorder>,
    pub violations: Arc<Violations>,
    pub stop: AtomicBool,
    pub acked_secrets: Mutex<Vec<String>>,
    /// (approval id, secret name) of every `202`.
    pub acked_approvals: Mutex<Vec<(String, String)>>,
    pub approved: Mutex<BTreeSet<String>>,
    pub revoked: Mutex<Vec<Revoked>>,
    /// Seconds from a revocation's `200` to the last other replica's `401`.
    pub propagation: Mutex<Vec<f64>>,
    pub revocation_bound: f64,
    counter: AtomicU64,
}

#[derive(Clone)]
pub struct Revoked {
    pub token: String,
    /// When the revoking replica acknowledged it (run seconds).
    pub at: f64,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// `(status, body)`; status [`NO_ANSWER`] when the connection failed or
/// closed without an answer, [`TIMED_OUT`] when none came in time.
async fn send(req: reqwest::RequestBuilder) -> (u16, Value) {
    match req.send().await {
        Ok(r) => {
            let status = r.status().as_u16();
            match r.text().await {
                Ok(text) => (status, serde_json::from_str(&text).unwrap_or(Value::Null)),
                Err(e) => (error_code(&e), Value::Null),
            }
        }
        Err(e) => (error_code(&e), Value::Null),
    }
}

/// What a request that got no HTTP answer is counted as.
fn error_code(e: &reqwest::Error) -> u16 {
    if e.is_timeout() {
        return TIMED_OUT;
    }
    let mut source: Option<&dyn std::error::Error> = Some(e);
    while let Some(err) = source {
        if is_tunnel_refusal(&err.to_string()) {
            return CONNECT_REFUSED;
        }
        source = err.source();
    }
    NO_ANSWER
}

/// The client's words for a proxy that answered `CONNECT` with anything
/// but `200` (the status itself is not passed on).
fn is_tunnel_refusal(message: &str) -> bool {
    message.contains("tunnel error: unsuccessful")
        || message.contains("tunnel error: proxy authorization required")
}

/// In the report's statuses: the proxy refused the `CONNECT` (its status
/// is not passed on by the client).
pub const CONNECT_REFUSED: u16 = 2;

/// In the report's statuses: no answer (connection refused, reset, closed).
pub const NO_ANSWER: u16 = 0;
/// In the report's statuses: no answer within the client's timeout (10 s).
pub const TIMED_OUT: u16 = 1;

fn text(v: &Value, key: &str) -> Result<String> {
    v[key]
        .as_str()
        .map(str::to_string)
        .ok_or_else(|| anyhow!("no {key:?} in {v}"))
}

/// Claims the installation on `at` and builds the world for `agents`.
#[allow(clippy::too_many_arguments)]
pub async fn setup(
    at: &Target,
    bootstrap_code: &str,
    real_value: &str,
    agents: usize,
    upstream_port: u16,
    token_seed: &str,
    lb: Arc<Balancer>,
    rec: Arc<Recorder>,
    violations: Arc<Violations>,
    revocation_bound: f64,
) -> Result<World> {
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .no_proxy()
        .build()?;
    let api = |p: &str| format!("{}{p}", at.api);
    let (code, body) = send(
        http.post(api("/v1/bootstrap/claim"))
            .json(&json!({"code": bootstrap_code, "email": OPERATOR})),
    )
    .await;
    if code != 201 {
        bail!("claim answered {code}: {body}");
    }
    let session = text(&body, "token")?;
    let authed = |m: reqwest::Method, p: &str| http.request(m, api(p)).bearer_auth(&session);
    let (code, body) =
        send(authed(reqwest::Method::POST, "/v1/agents").json(&json!({"name": "bot"}))).await;
    if code != 201 {
        bail!("agent registration answered {code}: {body}");
    }
    let (code, body) = send(
        authed(reqwest::Method::PUT, "/v1/secrets/SWAP_KEY")
            .json(&json!({"value": real_value, "allowed_hosts": [SWAP_HOST]})),
    )
    .await;
    if code != 201 {
        bail!("secret write answered {code}: {body}");
    }
    let mut jobs = Vec::new();
    for _ in 0..agents {
        let (code, body) = send(authed(reqwest::Method::POST, "/v1/jobs").json(&json!({
            "agent": "bot",
            "ttl_seconds": 7200,
            "grants": [{"env_var": "API_KEY", "secret": "SWAP_KEY", "mode": "placeholder"}],
            "egress": {"allow_hosts": [TUNNEL_HOST, SWAP_HOST]},
        })))
        .await;
        if code != 201 {
            bail!("job creation answered {code}: {body}");
        }
        jobs.push(Job {
            token: text(&body, "job_token")?,
            placeholder: body["env"]["API_KEY"]
                .as_str()
                .map(str::to_string)
                .context("no API_KEY placeholder in the job's env")?,
        });
    }
    let (code, body) = send(
        authed(reqwest::Method::POST, "/v1/tokens")
            .json(&json!({"class": "api", "subject": "chaos-requester", "scope": "secrets:write"})),
    )
    .await;
    if code != 201 {
        bail!("api token answered {code}: {body}");
    }
    let requester = text(&body, "token")?;
    let (code, body) = send(
        authed(reqwest::Method::PUT, "/v1/upstreams/tokens/credential")
            .json(&json!({"token": token_seed})),
    )
    .await;
    if code != 200 {
        bail!("upstream credential answered {code}: {body}");
    }
    Ok(World {
        http,
        session,
        requester,
        jobs,
        roots: Mutex::new(Vec::new()),
        upstream_port,
        lb,
        rec,
        violations,
        stop: AtomicBool::new(false),
        acked_secrets: Mutex::new(Vec::new()),
        acked_approvals: Mutex::new(Vec::new()),
        approved: Mutex::new(BTreeSet::new()),
        revoked: Mutex::new(Vec::new()),
        propagation: Mutex::new(Vec::new()),
        revocation_bound,
        counter: AtomicU64::new(0),
    })
}

impl World {
    /// Adds each replica's CA (`GET /v1/egress/ca.pem`, which may hold an
    /// old CA beside the new one) to what the agents trust.
    pub async fn trust_cas_of(&self, targets: &[Target]) -> Result<()> {
        for t in targets {
            let r = self
                .http
                .get(format!("{}/v1/egress/ca.pem", t.api))
                .send()
                .await?;
            if r.status() != 200 {
                bail!("{}: ca.pem answered {}", t.name, r.status());
            }
            let pem = r.text().await?;
            let mut roots = lock(&self.roots);
            if !roots.contains(&pem) {
                roots.push(pem);
            }
        }
        Ok(())
    }

    fn next(&self) -> u64 {
        self.counter.fetch_add(1, Ordering::Relaxed)
    }

    fn api(&self, t: &Target, path: &str) -> String {
        format!("{}{path}", t.api)
    }

    /// Runs one agent until told to stop.
    pub async fn agent(self: Arc<Self>, index: usize) {
        let job = match self.jobs.get(index) {
            Some(j) => j.clone(),
            None => return,
        };
        let mut proxies: HashMap<(String, usize), reqwest::Client> = HashMap::new();
        let plan: &[Op] = match index % 4 {
            0 => &[
                Op::Whoami,
                Op::Credentials,
                Op::Tunnel,
                Op::SecretWrite,
                Op::Intercept,
                Op::RevokedProbe,
            ],
            1 => &[
                Op::Whoami,
                Op::Credentials,
                Op::Intercept,
                Op::ApprovalRequest,
                Op::Tunnel,
                Op::RevokedProbe,
            ],
            _ => &[
                Op::Whoami,
                Op::Credentials,
                Op::Tunnel,
                Op::Intercept,
                Op::Whoami,
                Op::RevokedProbe,
            ],
        };
        let mut step = index;
        while !self.stop.load(Ordering::SeqCst) {
            let op = plan[step % plan.len()];
            step += 1;
            let Some(target) = self.lb.pick() else {
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            };
            let ok = match op {
                Op::Whoami | Op::Credentials => self.token_call(op, &target, &job).await,
                Op::Tunnel | Op::Intercept => {
                    self.proxy_call(op, &target, &job, &mut proxies).await
                }
                Op::SecretWrite => self.secret_write(&target, index).await,
                Op::ApprovalRequest | Op::ApprovalDecide => self.approval(&target, index).await,
                Op::RevokedProbe => self.revoked_probe(&target).await,
            };
            if !ok {
                // A client backs off a little after a failure.
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }

    async fn token_call(&self, op: Op, t: &Target, job: &Job) -> bool {
        let path = if op == Op::Whoami {
            "/v1/auth/whoami"
        } else {
            "/v1/job/credentials"
        };
        let start = self.rec.now();
        let (code, _) = send(self.http.get(self.api(t, path)).bearer_auth(&job.token)).await;
        self.rec.record(op, start, code, code == 200);
        code == 200
    }

    fn proxy_client(
        &self,
        t: &Target,
        job: &Job,
        cache: &mut HashMap<(String, usize), reqwest::Client>,
    ) -> Result<reqwest::Client> {
        let roots = lock(&self.roots).clone();
        let key = (t.proxy.clone(), roots.len());
        if let Some(c) = cache.get(&key) {
            return Ok(c.clone());
        }
        let proxy =
            reqwest::Proxy::all(format!("http://{}", t.proxy))?.basic_auth("job", &job.token);
        let mut b = reqwest::Client::builder()
            .proxy(proxy)
            .timeout(Duration::from_secs(10))
            // Every request goes through the proxy's admission again.
            .pool_max_idle_per_host(0);
        for pem in &roots {
            for cert in reqwest::Certificate::from_pem_bundle(pem.as_bytes())? {
                b = b.add_root_certificate(cert);
            }
        }
        let client = b.build()?;
        cache.insert(key, client.clone());
        Ok(client)
    }

    async fn proxy_call(
        &self,
        op: Op,
        t: &Target,
        job: &Job,
        cache: &mut HashMap<(String, usize), reqwest::Client>,
    ) -> bool {
        let client = match self.proxy_client(t, job, cache) {
            Ok(c) => c,
            Err(e) => {
                self.violations
                    .add(checks::SWAP, format!("cannot build a proxy client: {e}"));
                return false;
            }
        };
        let port = self.upstream_port;
        let req = if op == Op::Tunnel {
            client.get(format!("https://{TUNNEL_HOST}:{port}/t"))
        } else {
            client
                .get(format!("https://{SWAP_HOST}:{port}/s"))
                .header("authorization", format!("Bearer {}", job.placeholder))
        };
        let start = self.rec.now();
        let (code, _) = send(req).await;
        self.rec.record(op, start, code, code == 200);
        code == 200
    }

    async fn secret_write(&self, t: &Target, index: usize) -> bool {
        let name = format!("w-{index}-{}", self.next());
        let start = self.rec.now();
        let (code, _) = send(
            self.http
                .put(self.api(t, &format!("/v1/secrets/{name}")))
                .bearer_auth(&self.session)
                .json(
                    &json!({"value": format!("v-{name}"), "allowed_hosts": ["store.chaos.test"]}),
                ),
        )
        .await;
        let ok = code == 201 || code == 200;
        self.rec.record(Op::SecretWrite, start, code, ok);
        if ok {
            lock(&self.acked_secrets).push(name);
        }
        ok
    }

    /// Requested on `t` by the api token, decided on another replica by the
    /// operator's session.
    async fn approval(&self, t: &Target, index: usize) -> bool {
        let name = format!("a-{index}-{}", self.next());
        let start = self.rec.now();
        let (code, body) = send(
            self.http
                .put(self.api(t, &format!("/v1/secrets/{name}")))
                .bearer_auth(&self.requester)
                .json(
                    &json!({"value": format!("v-{name}"), "allowed_hosts": ["store.chaos.test"]}),
                ),
        )
        .await;
        let id = body["approval_id"].as_str().map(str::to_string);
        self.rec.record(
            Op::ApprovalRequest,
            start,
            code,
            code == 202 && id.is_some(),
        );
        let Some(id) = id.filter(|_| code == 202) else {
            return false;
        };
        lock(&self.acked_approvals).push((id.clone(), name));
        let Some(other) = self.lb.other_than(&t.name) else {
            return false;
        };
        self.decide(&other, &id).await == 200
    }

    /// Approves `id` on `t`; remembers it when the answer is `200`.
    pub async fn decide(&self, t: &Target, id: &str) -> u16 {
        let start = self.rec.now();
        let (code, _) = send(
            self.http
                .post(self.api(t, &format!("/v1/approvals/{id}/decision")))
                .bearer_auth(&self.session)
                .json(&json!({"decision": "approve", "reason": "chaos"})),
        )
        .await;
        self.rec
            .record(Op::ApprovalDecide, start, code, code == 200);
        if code == 200 {
            lock(&self.approved).insert(id.to_string());
        }
        code
    }

    async fn revoked_probe(&self, t: &Target) -> bool {
        let now = self.rec.now();
        let token = {
            let revoked = lock(&self.revoked);
            let due: Vec<&Revoked> = revoked
                .iter()
                .filter(|r| r.at + self.revocation_bound <= now)
                .collect();
            if due.is_empty() {
                return true;
            }
            due[(self.next() as usize) % due.len()].token.clone()
        };
        let start = self.rec.now();
        let (code, _) = send(
            self.http
                .get(self.api(t, "/v1/auth/whoami"))
                .bearer_auth(&token),
        )
        .await;
        self.rec.record(Op::RevokedProbe, start, code, code == 401);
        if (200..300).contains(&code) {
            self.violations.add(
                checks::REVOKED_ACCEPTED,
                format!("{} accepted a token revoked earlier ({code})", t.name),
            );
        }
        code == 401
    }

    /// Every `period`: an api token minted on one replica, seen valid
    /// everywhere, revoked there, then polled on every other replica
    /// until refused; a success after the bound is a violation.
    pub async fn prober(self: Arc<Self>, period: Duration) {
        let mut n = 0u64;
        while !self.stop.load(Ordering::SeqCst) {
            tokio::time::sleep(period).await;
            n += 1;
            if let Err(e) = self.probe_once(n).await {
                tracing_note(&format!("revocation probe {n} skipped: {e}"));
            }
        }
    }

    async fn probe_once(&self, n: u64) -> Result<()> {
        let x = self.lb.pick().context("no replica up")?;
        let (code, body) = send(
            self.http
                .post(self.api(&x, "/v1/tokens"))
                .bearer_auth(&self.session)
                .json(&json!({"class": "api", "subject": format!("probe-{n}"), "scope": "audit:read"})),
        )
        .await;
        if code != 201 {
            bail!("mint answered {code}");
        }
        let token = text(&body, "token")?;
        let (code, me) = send(
            self.http
                .get(self.api(&x, "/v1/auth/whoami"))
                .bearer_auth(&token),
        )
        .await;
        if code != 200 {
            bail!("whoami answered {code}");
        }
        let jti = text(&me, "jti")?;
        let others: Vec<Target> = self
            .lb
            .all()
            .into_iter()
            .filter(|t| t.name != x.name)
            .collect();
        for t in &others {
            let (code, _) = send(
                self.http
                    .get(self.api(t, "/v1/auth/whoami"))
                    .bearer_auth(&token),
            )
            .await;
            if code != 200 {
                bail!("{} did not accept the fresh token ({code})", t.name);
            }
        }
        let (code, _) = send(
            self.http
                .post(self.api(&x, "/v1/tokens/revoke"))
                .bearer_auth(&self.session)
                .json(&json!({"jti": jti})),
        )
        .await;
        if code != 200 {
            bail!("revoke answered {code}");
        }
        let at = self.rec.now();
        lock(&self.revoked).push(Revoked {
            token: token.clone(),
            at,
        });
        let (code, _) = send(
            self.http
                .get(self.api(&x, "/v1/auth/whoami"))
                .bearer_auth(&token),
        )
        .await;
        if (200..300).contains(&code) {
            self.violations.add(
                checks::REVOKED_ACCEPTED,
                format!("{} accepted the token it had just revoked", x.name),
            );
        }
        let mut slowest = 0.0f64;
        for t in &others {
            loop {
                let (code, _) = send(
                    self.http
                        .get(self.api(t, "/v1/auth/whoami"))
                        .bearer_auth(&token),
                )
                .await;
                let elapsed = self.rec.now() - at;
                if code == 401 {
                    slowest = slowest.max(elapsed);
                    break;
                }
                if (200..300).contains(&code) && elapsed > self.revocation_bound {
                    self.violations.add(
                        checks::REVOKED_ACCEPTED,
                        format!(
                            "{} still accepted a token revoked on {} after {elapsed:.2}s",
                            t.name, x.name
                        ),
                    );
                    break;
                }
                if elapsed > self.revocation_bound + 5.0 {
                    break; // neither refused nor accepted: the replica is away
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
        lock(&self.propagation).push(slowest);
        Ok(())
    }
}

fn tracing_note(msg: &str) {
    if std::env::var_os("CHAOS_VERBOSE").is_some() {
        eprintln!("chaos: {msg}");
    }
}

/// Every secret name the store lists now.
pub async fn listed_secrets(w: &World, t: &Target) -> Result<BTreeSet<String>> {
    let (code, body) = send(w.http.get(w.api(t, "/v1/secrets")).bearer_auth(&w.session)).await;
    if code != 200 {
        bail!("GET /v1/secrets answered {code}");
    }
    let list = body
        .as_array()
        .or_else(|| body["secrets"].as_array())
        .cloned()
        .unwrap_or_default();
    Ok(list
        .iter()
        .filter_map(|s| s["name"].as_str().map(str::to_string))
        .collect())
}

/// An approval's status (`None`: not found).
pub async fn approval_status(w: &World, t: &Target, id: &str) -> Result<Option<String>> {
    let (code, body) = send(
        w.http
            .get(w.api(t, &format!("/v1/approvals/{id}")))
            .bearer_auth(&w.session),
    )
    .await;
    match code {
        200 => Ok(body["status"].as_str().map(str::to_string)),
        404 => Ok(None),
        c => bail!("GET /v1/approvals/{id} answered {c}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refused_connect_is_told_apart_from_a_lost_connection() {
        assert!(is_tunnel_refusal("tunnel error: unsuccessful"));
        assert!(is_tunnel_refusal(
            "tunnel error: proxy authorization required"
        ));
        assert!(!is_tunnel_refusal("tunnel error: unexpected end of file"));
        assert!(!is_tunnel_refusal("connection refused"));
        let codes = [NO_ANSWER, TIMED_OUT, CONNECT_REFUSED];
        assert!(codes.iter().all(|c| *c < 100), "never an HTTP status");
    }
}
