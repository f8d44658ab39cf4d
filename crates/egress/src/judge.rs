//! The optional egress judge (`egress.judge.url`): an operator's policy
//! endpoint asked `{owner, agent, job, method, host, path}` and answering
//! `{verdict: "allow"|"deny", reason}`.
//!
//! A hard timeout (`egress.judge.timeout_ms`), a deny on timeout, error or
//! anything but a well-formed answer; the cache and breaker live in the
//! domain ([`gatehouse_domain::egress::judge`]), driven by the injected
//! clock. Every verdict actually received, and every breaker opening, is
//! audited; cached verdicts are not audited again. The judge is called
//! through the one outbound client (its URL is the operator's, so any
//! port; never Gatehouse's own listeners).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use gatehouse_domain::clock::UnixTime;
use gatehouse_domain::egress::judge::{JudgeBook, JudgeKey, Next, Verdict};
use serde::Deserialize;

use gatehouse_domain::egress::outbound::Origin;

use crate::directory::{EgressAudit, JobIdentity};
use crate::outbound::OutboundClient;
use crate::refusal::Refusal;

#[derive(Debug, Clone)]
pub struct JudgeSettings {
    pub url: String,
    pub timeout: Duration,
}

pub struct Judge {
    settings: JudgeSettings,
    client: Arc<OutboundClient>,
    book: Mutex<JudgeBook>,
}

#[derive(Deserialize)]
struct Answer {
    verdict: String,
    #[serde(default)]
    reason: String,
}

impl Judge {
    pub fn new(settings: JudgeSettings, client: Arc<OutboundClient>) -> Result<Self, String> {
        crate::outbound::parse_url(&settings.url).map_err(|e| e.to_string())?;
        Ok(Self {
            settings,
            client,
            book: Mutex::new(JudgeBook::new()),
        })
    }

    fn with_book<T>(&self, f: impl FnOnce(&mut JudgeBook) -> T) -> T {
        match self.book.lock() {
            Ok(mut b) => f(&mut b),
            Err(poisoned) => f(&mut poisoned.into_inner()),
        }
    }

    /// Whether the breaker is open at `now`.
    pub fn is_open(&self, now: UnixTime) -> bool {
        self.with_book(|b| b.is_open(now))
    }

    async fn ask(&self, job: &JobIdentity, method: &str, host: &str) -> Result<Verdict, String> {
        let body = serde_json::json!({
            "owner": job.owner,
            "agent": job.agent,
            "job": job.job_id,
            "method": method,
            "host": host,
            "path": "",
        });
        // The timeout covers the lookup and the check as well as the call.
        let call = async {
            let request = self
                .client
                .request(reqwest::Method::POST, &self.settings.url, Origin::Operator)
                .await
                .map_err(|e| format!("refused:{}", e.reason()))?;
            request.json(&body).send().await.map_err(|e| {
                if e.is_timeout() {
                    "timeout".to_string()
                } else {
                    "unreachable".to_string()
                }
            })
        };
        let resp = tokio::time::timeout(self.settings.timeout, call)
            .await
            .map_err(|_| "timeout".to_string())??;
        if !resp.status().is_success() {
            return Err(format!("status {}", resp.status().as_u16()));
        }
        let answer: Answer = tokio::time::timeout(self.settings.timeout, resp.json())
            .await
            .map_err(|_| "timeout".to_string())?
            .map_err(|_| "malformed answer".to_string())?;
        match answer.verdict.as_str() {
            "allow" => Ok(Verdict {
                allow: true,
                reason: answer.reason,
            }),
            "deny" => Ok(Verdict {
                allow: false,
                reason: answer.reason,
            }),
            _ => Err("malformed answer".into()),
        }
    }

    /// Asks (or recalls) the judge about (job, method, host). `audit`
    /// receives each fresh verdict.
    pub async fn decide(
        &self,
        job: &JobIdentity,
        method: &str,
        host: &str,
        now: UnixTime,
        audit: impl Fn(EgressAudit),
    ) -> Result<(), Refusal> {
        let key = JudgeKey {
            job: job.job_id.clone(),
            method: method.to_string(),
            host: host.to_string(),
        };
        let event = |outcome: String| EgressAudit {
            action: "egress.judge",
            target: format!("{method} {host}"),
            outcome,
            job: Some(job.clone()),
            source: std::net::IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED),
        };
        let verdict = match self.with_book(|b| b.next(&key, now)) {
            Next::Cached(v) => v,
            Next::Open => return Err(Refusal::Judge("judge unavailable (breaker open)".into())),
            Next::Ask => match self.ask(job, method, host).await {
                Ok(v) => {
                    self.with_book(|b| b.answered(key, v.clone(), now));
                    audit(event(if v.allow {
                        "allow".into()
                    } else {
                        "deny".into()
                    }));
                    v
                }
                Err(why) => {
                    let opened = self.with_book(|b| b.failed(now));
                    audit(event(format!("deny:{why}")));
                    if opened {
                        tracing::warn!("egress judge failing ({why}): breaker open");
                    }
                    return Err(Refusal::Judge(format!("judge unavailable ({why})")));
                }
            },
        };
        if verdict.allow {
            Ok(())
        } else {
            Err(Refusal::Judge(verdict.reason))
        }
    }
}
