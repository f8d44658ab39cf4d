//! The one check every egress target passes before any connection, and
//! dialling a checked address.
//!
//! Order (SPEC §6): parse (done by the caller, `400` on error), the
//! domain's address/port/localhost check, the job's allow list, the judge,
//! then one resolution whose every answer is checked; [`dial`] connects
//! only to those checked addresses, so nothing resolves a name twice.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use gatehouse_domain::egress::{check_resolved, check_target, parse_target, Checked, Target};
use tokio::net::TcpStream;

use crate::directory::{EgressAudit, JobIdentity, JobView, Lease, ViewError};
use crate::refusal::Refusal;
use crate::Engine;

const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
const RESOLVE_TIMEOUT: Duration = Duration::from_secs(10);

/// A target that passed the check, with the addresses to connect to.
#[derive(Debug, Clone)]
pub struct Admitted {
    pub target: Target,
    /// The host's normal form (what allow lists and bindings compare).
    pub host: String,
    pub addrs: Vec<SocketAddr>,
}

/// What [`Engine::preflight`] found: the target would be admitted.
#[derive(Debug, Clone)]
pub struct Preflight {
    pub admitted: Admitted,
    /// A judge is configured: it still decides each request.
    pub judged: bool,
}

/// An absolute `http://` or `https://` URL's target, as the proxy reads a
/// request's authority (`parse_target`, default port by scheme).
pub fn url_target(url: &str) -> Result<Target, Refusal> {
    let uri: http::Uri = url
        .parse()
        .map_err(|_| Refusal::Malformed("not a URL".into()))?;
    let port = match uri.scheme_str() {
        Some(s) if s.eq_ignore_ascii_case("http") => 80,
        Some(s) if s.eq_ignore_ascii_case("https") => 443,
        _ => {
            return Err(Refusal::Malformed(
                "the URL must start with http:// or https://".into(),
            ))
        }
    };
    let authority = uri
        .authority()
        .ok_or_else(|| Refusal::Malformed("the URL has no host".into()))?;
    if authority.as_str().contains('@') {
        return Err(Refusal::Malformed("credentials in the URL".into()));
    }
    Ok(parse_target(authority.as_str(), port)?)
}

/// What the proxy knows about a request, for its audit record.
#[derive(Debug, Default)]
pub(crate) struct Context {
    /// The verified credential's lease, once known.
    pub lease: Option<std::sync::Arc<Lease>>,
    /// The target's host, once parsed (shared: a kept admission lends its
    /// own without copying it per request).
    pub host: Option<std::sync::Arc<str>>,
}

impl Engine {
    pub(crate) async fn view(&self, job: &JobIdentity) -> Result<std::sync::Arc<JobView>, Refusal> {
        self.directory.view(job).await.map_err(|e| match e {
            ViewError::Refused => Refusal::NoCredentials,
            ViewError::Internal(detail) => Refusal::Internal(detail),
        })
    }

    /// The one check: address rules, allow list, judge, resolution.
    pub async fn admit(
        &self,
        job: &JobIdentity,
        view: &JobView,
        target: Target,
        method: &str,
        peer: IpAddr,
    ) -> Result<Admitted, Refusal> {
        let (checked, host) = self.screen(view, &target)?;
        self.judge(job, method, &host, peer).await?;
        let addrs = self.resolve_checked(checked).await?;
        Ok(Admitted {
            target,
            host,
            addrs,
        })
    }

    /// The judge's verdict on one request, when a judge is configured
    /// (asked per request: the method is part of the question; it caches
    /// its own verdicts).
    pub(crate) async fn judge(
        &self,
        job: &JobIdentity,
        method: &str,
        host: &str,
        peer: IpAddr,
    ) -> Result<(), Refusal> {
        let Some(judge) = &self.judge else {
            return Ok(());
        };
        judge
            .decide(job, method, host, self.clock.now(), |event| {
                self.directory.audit(EgressAudit {
                    source: peer,
                    ..event
                })
            })
            .await
    }

    /// What [`Engine::admit`] would say about `url` for a job with `view`,
    /// without asking the judge (it is asked per request, with the
    /// method) and without connecting: the same address rules, allow list
    /// and checked resolution. `url` is read as the proxy reads a request
    /// target: an `http`/`https` URL's authority, default port by scheme.
    pub async fn preflight(&self, view: &JobView, url: &str) -> Result<Preflight, Refusal> {
        let target = url_target(url)?;
        let (checked, host) = self.screen(view, &target)?;
        let addrs = self.resolve_checked(checked).await?;
        Ok(Preflight {
            admitted: Admitted {
                target,
                host,
                addrs,
            },
            judged: self.judge.is_some(),
        })
    }

    /// Address rules, then the allow list.
    fn screen(&self, view: &JobView, target: &Target) -> Result<(Checked, String), Refusal> {
        let checked = check_target(target, &self.settings.policy)?;
        let host = target.host().to_string();
        if !view.allows(&host) {
            return Err(Refusal::HostNotAllowed(host));
        }
        Ok((checked, host))
    }

    /// One resolution, every answer checked.
    async fn resolve_checked(&self, checked: Checked) -> Result<Vec<SocketAddr>, Refusal> {
        Ok(match checked {
            Checked::Connect(addr) => vec![addr],
            Checked::Resolve { name, port } => {
                let ips =
                    tokio::time::timeout(RESOLVE_TIMEOUT, self.resolver.resolve(name.as_str()))
                        .await
                        .map_err(|_| Refusal::BadGateway(format!("resolving {name} timed out")))?
                        .map_err(|_| Refusal::BadGateway(format!("cannot resolve {name}")))?;
                if ips.is_empty() {
                    return Err(Refusal::BadGateway(format!("{name} has no address")));
                }
                check_resolved(&ips, port, &self.settings.policy)?
            }
        })
    }

    /// Answers a refusal: audited (rate-limited), counted when it is a
    /// failed placeholder resolution.
    pub(crate) fn refuse(
        &self,
        refusal: Refusal,
        ctx: &Context,
        peer: IpAddr,
    ) -> http::Response<crate::Body> {
        let now = self.clock.now();
        if refusal.is_placeholder_failure() {
            self.failures.record_failure(peer, now);
        }
        let audited = !matches!(refusal, Refusal::Internal(_) | Refusal::BadGateway(_));
        let host = ctx.host.as_deref().unwrap_or_default().to_string();
        let key = format!("{peer}|{}|{host}", refusal.audit_outcome());
        if audited && self.refusal_audit.pass(&key, now) {
            self.directory.audit(EgressAudit {
                action: "egress.refuse",
                target: host,
                outcome: refusal.audit_outcome(),
                job: ctx.lease.as_ref().map(|l| l.job.clone()),
                source: peer,
            });
        }
        refusal.into_response()
    }

    /// After a forwarded request: swaps audited (once per job, secret and
    /// host a minute), and a request that used placeholders clears the
    /// source's failure count.
    pub(crate) fn swapped(&self, job: &JobIdentity, host: &str, secrets: &[String], peer: IpAddr) {
        if secrets.is_empty() {
            return;
        }
        let now = self.clock.now();
        self.failures.clear(peer);
        for secret in secrets {
            let key = format!("{}|{secret}|{host}", job.job_id);
            if self.swap_audit.pass(&key, now) {
                self.directory.audit(EgressAudit {
                    action: "egress.swap",
                    target: format!("{secret}@{host}"),
                    outcome: "ok".into(),
                    job: Some(job.clone()),
                    source: peer,
                });
            }
        }
    }
}

/// Connects to the first checked address that answers.
pub(crate) async fn dial(addrs: &[SocketAddr]) -> Result<TcpStream, Refusal> {
    let mut last = String::from("no address");
    for addr in addrs {
        match tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(addr)).await {
            Ok(Ok(stream)) => {
                let _ = stream.set_nodelay(true);
                return Ok(stream);
            }
            Ok(Err(e)) => last = e.to_string(),
            Err(_) => last = "connect timed out".into(),
        }
    }
    Err(Refusal::BadGateway(format!("cannot connect: {last}")))
}
