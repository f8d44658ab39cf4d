//! The one outbound client (SPEC §12): every HTTP request Gatehouse itself
//! makes (webhook forwarding, approval notifications, the judge, upstream
//! drivers) goes through [`OutboundClient`].
//!
//! Each request is pinned before it is sent: the URL is parsed by the same
//! parser reqwest uses, an IP literal is checked at once, a name is
//! resolved **once** (`egress.static_hosts` first, then the system) and
//! every answer checked ([`gatehouse_domain::egress::outbound`]: the §6
//! address rule, the operator's exceptions, never Gatehouse's own
//! listeners). The request then goes out on a client whose resolver knows
//! only that name and answers only the checked addresses, so the socket
//! opens on an address that passed, with no second lookup. Such clients
//! are kept per (name, checked addresses), so a target that resolves the
//! same way again reuses its connections. Redirects are
//! never followed and no system proxy (`HTTP_PROXY`) is used: either
//! would send the request somewhere that was never checked.
//!
//! A refusal names its reason (`ssrf`, `own_listener`, `port`) and is
//! reported to the audit hook before the caller sees it.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use gatehouse_domain::egress::outbound::{
    check_outbound_resolved, check_outbound_target, Origin, OutboundPolicy, Refused,
};
use gatehouse_domain::egress::{parse_target, Checked, Target};
use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use reqwest::{Method, RequestBuilder, Url};
use thiserror::Error;

use crate::resolver::Resolver;

/// Why an outbound request was not sent.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum OutboundError {
    /// Not an `http(s)://host[:port]/...` URL without credentials or
    /// fragment, or a host that is not a valid name or address.
    #[error("{0}")]
    Malformed(&'static str),
    /// The target is refused (`ssrf`, `own_listener`, `port`).
    #[error("refused ({reason}): {0}", reason = .0.reason())]
    Refused(Refused),
    /// The name did not resolve.
    #[error("the host name did not resolve")]
    Unresolvable,
    /// The HTTP client could not be built.
    #[error("outbound client: {0}")]
    Client(String),
    /// Plain `http` to an address outside `egress.allow_private_cidrs`
    /// where `https` is required (an MCP server's `url`).
    #[error(
        "https is required: plain http is allowed only to addresses in egress.allow_private_cidrs"
    )]
    PlainHttp,
}

impl OutboundError {
    /// A short reason for errors and audit records.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::Malformed(_) => "malformed",
            Self::Refused(r) => r.reason(),
            Self::Unresolvable => "unresolvable",
            Self::Client(_) => "client",
            Self::PlainHttp => "plain_http",
        }
    }
}

/// Called with the target (`host:port`) and the refusal, for each refusal.
pub type RefusalHook = Arc<dyn Fn(&str, &Refused) + Send + Sync>;

/// Parses an outbound URL with reqwest's own parser and reads its host
/// into the domain's normal form. No I/O.
pub fn parse_url(text: &str) -> Result<(Url, Target), OutboundError> {
    let url = Url::parse(text).map_err(|_| OutboundError::Malformed("not a URL"))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(OutboundError::Malformed("the scheme must be http or https"));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(OutboundError::Malformed("credentials in the URL"));
    }
    if url.fragment().is_some() {
        return Err(OutboundError::Malformed("a fragment in the URL"));
    }
    let host = url.host_str().ok_or(OutboundError::Malformed("no host"))?;
    let port = url
        .port_or_known_default()
        .ok_or(OutboundError::Malformed("no port"))?;
    let target = parse_target(&format!("{host}:{port}"), port)
        .map_err(|_| OutboundError::Malformed("the host is not a valid name or address"))?;
    Ok((url, target))
}

/// Parses and checks a URL without resolving it (what a handler can say
/// when a user saves a target). A name is checked again, resolved, at
/// every use.
pub fn check_url(
    text: &str,
    origin: Origin,
    policy: &OutboundPolicy,
) -> Result<(Url, Checked), OutboundError> {
    let (url, target) = parse_url(text)?;
    let checked = check_outbound_target(&target, origin, policy).map_err(OutboundError::Refused)?;
    Ok((url, checked))
}

pub struct OutboundClient {
    policy: OutboundPolicy,
    resolver: Arc<dyn Resolver>,
    tls: Arc<rustls::ClientConfig>,
    timeout: Duration,
    on_refusal: Option<RefusalHook>,
    /// Clients by pinned answer, so a target that resolves to the same
    /// checked addresses again reuses its open connections. Safe by
    /// construction: a client's resolver answers only its own key.
    clients: Mutex<HashMap<Pinned, reqwest::Client>>,
}

/// Pinned clients kept at most; beyond, the cache starts over.
const MAX_PINNED_CLIENTS: usize = 256;

impl OutboundClient {
    /// `tls`: the upstream TLS configuration ([`crate::tls::upstream_config`]).
    /// `timeout`: the default for a whole request.
    pub fn new(
        policy: OutboundPolicy,
        resolver: Arc<dyn Resolver>,
        tls: Arc<rustls::ClientConfig>,
        timeout: Duration,
    ) -> Self {
        Self {
            policy,
            resolver,
            tls,
            timeout,
            on_refusal: None,
            clients: Mutex::new(HashMap::new()),
        }
    }

    /// Reports every refusal (the API audits it).
    pub fn with_refusal_hook(mut self, hook: RefusalHook) -> Self {
        self.on_refusal = Some(hook);
        self
    }

    pub fn policy(&self) -> &OutboundPolicy {
        &self.policy
    }

    fn refused(&self, target: &Target, r: Refused) -> OutboundError {
        if let Some(hook) = &self.on_refusal {
            hook(&target.to_string(), &r);
        }
        OutboundError::Refused(r)
    }

    /// Checks a saved target now, resolving a name once: what a user is
    /// told when they save it. A name that does not resolve yet passes
    /// (it is checked again at every use).
    pub async fn check_saved(&self, text: &str, origin: Origin) -> Result<Url, OutboundError> {
        match self.pin(text, origin).await {
            Ok((url, _)) => Ok(url),
            Err(OutboundError::Unresolvable) => parse_url(text).map(|(url, _)| url),
            Err(e) => Err(e),
        }
    }

    /// A request to `url`, pinned to checked addresses.
    pub async fn request(
        &self,
        method: Method,
        url: &str,
        origin: Origin,
    ) -> Result<RequestBuilder, OutboundError> {
        let (url, client) = self.pin(url, origin).await?;
        Ok(client.request(method, url))
    }

    /// As [`Self::check_saved`], for a target that must use `https`
    /// unless every address it reaches lies in `egress.allow_private_cidrs`
    /// (the domain's `plain_http_allowed`): an MCP server's `url`. A plain
    /// `http` name that does not resolve cannot show that, so it is
    /// refused; over `https` it passes, to be checked at every use.
    pub async fn check_saved_tls(&self, text: &str, origin: Origin) -> Result<Url, OutboundError> {
        match self.pin_addrs(text, origin).await {
            Ok((url, pinned)) => self.tls_unless_private(url, &pinned),
            Err(OutboundError::Unresolvable) => {
                let (url, _) = parse_url(text)?;
                if url.scheme() == "https" {
                    Ok(url)
                } else {
                    Err(OutboundError::PlainHttp)
                }
            }
            Err(e) => Err(e),
        }
    }

    /// As [`Self::request`], holding the target to the rule of
    /// [`Self::check_saved_tls`] on the addresses it now resolves to.
    pub async fn request_tls(
        &self,
        method: Method,
        url: &str,
        origin: Origin,
    ) -> Result<RequestBuilder, OutboundError> {
        let (url, pinned) = self.pin_addrs(url, origin).await?;
        let url = self.tls_unless_private(url, &pinned)?;
        let client = self.client_for(pinned)?;
        Ok(client.request(method, url))
    }

    fn tls_unless_private(&self, url: Url, pinned: &Pinned) -> Result<Url, OutboundError> {
        if url.scheme() == "https" {
            return Ok(url);
        }
        let addrs = match pinned {
            Pinned::Literal(a) => std::slice::from_ref(a),
            Pinned::Name { addrs, .. } => addrs.as_slice(),
        };
        if gatehouse_domain::mcp::plain_http_allowed(addrs, &self.policy.egress) {
            Ok(url)
        } else {
            Err(OutboundError::PlainHttp)
        }
    }

    async fn pin(
        &self,
        text: &str,
        origin: Origin,
    ) -> Result<(Url, reqwest::Client), OutboundError> {
        let (url, pinned) = self.pin_addrs(text, origin).await?;
        let client = self.client_for(pinned)?;
        Ok((url, client))
    }

    async fn pin_addrs(&self, text: &str, origin: Origin) -> Result<(Url, Pinned), OutboundError> {
        let (url, target) = parse_url(text)?;
        let checked = check_outbound_target(&target, origin, &self.policy)
            .map_err(|r| self.refused(&target, r))?;
        let pinned = match checked {
            Checked::Connect(addr) => Pinned::Literal(addr),
            Checked::Resolve { name, port } => {
                let answers = self
                    .resolver
                    .resolve(name.as_str())
                    .await
                    .map_err(|_| OutboundError::Unresolvable)?;
                let addrs = check_outbound_resolved(&answers, port, &self.policy)
                    .map_err(|r| self.refused(&target, r))?;
                if addrs.is_empty() {
                    return Err(OutboundError::Unresolvable);
                }
                Pinned::Name {
                    name: name.as_str().to_string(),
                    addrs,
                }
            }
        };
        Ok((url, pinned))
    }

    fn client_for(&self, pinned: Pinned) -> Result<reqwest::Client, OutboundError> {
        let mut cache = match self.clients.lock() {
            Ok(c) => c,
            Err(poisoned) => poisoned.into_inner(),
        };
        if let Some(client) = cache.get(&pinned) {
            return Ok(client.clone());
        }
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .timeout(self.timeout)
            .use_preconfigured_tls((*self.tls).clone())
            .dns_resolver(Arc::new(pinned.clone()))
            .build()
            .map_err(|e| OutboundError::Client(e.to_string()))?;
        if cache.len() >= MAX_PINNED_CLIENTS {
            cache.clear();
        }
        cache.insert(pinned, client.clone());
        Ok(client)
    }
}

/// The resolver of one pinned request: the checked addresses of its one
/// name; any other name (there is none without redirects) is refused.
/// An IP literal never reaches a resolver: it was checked above.
#[derive(Clone, PartialEq, Eq, Hash)]
enum Pinned {
    /// An IP literal: reqwest never asks a resolver; keyed by the address.
    Literal(SocketAddr),
    Name {
        name: String,
        addrs: Vec<SocketAddr>,
    },
}

impl Resolve for Pinned {
    fn resolve(&self, asked: Name) -> Resolving {
        let answer = match self {
            Self::Name { name, addrs }
                if asked
                    .as_str()
                    .trim_end_matches('.')
                    .eq_ignore_ascii_case(name) =>
            {
                Ok(addrs.clone())
            }
            Self::Literal(_) | Self::Name { .. } => Err(format!(
                "{} was not checked for this request",
                asked.as_str()
            )),
        };
        Box::pin(async move {
            answer
                .map(|a| Box::new(a.into_iter()) as Addrs)
                .map_err(|e| e.into())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use gatehouse_domain::egress::{Cidr, EgressPolicy};

    fn policy(private: &[&str]) -> OutboundPolicy {
        OutboundPolicy {
            egress: EgressPolicy {
                allow_private_cidrs: private.iter().map(|c| Cidr::parse(c).unwrap()).collect(),
                ..EgressPolicy::default()
            },
            own_listeners: vec!["127.0.0.1:8270".parse().unwrap()],
        }
    }

    fn reason(text: &str, origin: Origin, p: &OutboundPolicy) -> &'static str {
        match check_url(text, origin, p) {
            Ok(_) => "ok",
            Err(e) => e.reason(),
        }
    }

    #[test]
    fn url_spellings_of_gatehouse_itself_are_refused() {
        let open = policy(&["127.0.0.0/8"]);
        for url in [
            "http://127.0.0.1:8270/v1/tokens",
            "http://2130706433:8270/",
            "http://0x7f.1:8270/",
            "http://[::ffff:7f00:1]:8270/",
            "HTTP://127.0.0.1.:8270/",
        ] {
            assert_eq!(
                reason(url, Origin::Operator, &open),
                "own_listener",
                "{url}"
            );
            assert_eq!(reason(url, Origin::Operator, &policy(&[])), "ssrf", "{url}");
        }
        assert_eq!(
            reason("http://localhost:9/", Origin::Operator, &open),
            "ssrf"
        );
        assert_eq!(reason("http://127.0.0.1:9/", Origin::Operator, &open), "ok");
    }

    #[tokio::test]
    async fn a_pinned_resolver_answers_only_its_own_name_with_its_checked_addresses() {
        use std::str::FromStr;
        let addrs = vec!["192.0.2.7:443".parse().unwrap()];
        let pinned = Pinned::Name {
            name: "api.example.com".into(),
            addrs: addrs.clone(),
        };
        let got: Vec<SocketAddr> = pinned
            .resolve(Name::from_str("API.example.com.").unwrap())
            .await
            .unwrap()
            .collect();
        assert_eq!(got, addrs);
        assert!(pinned
            .resolve(Name::from_str("other.example.com").unwrap())
            .await
            .is_err());
        let literal = Pinned::Literal("192.0.2.7:443".parse().unwrap());
        assert!(literal
            .resolve(Name::from_str("api.example.com").unwrap())
            .await
            .is_err());
    }

    #[test]
    fn malformed_and_credentialed_urls_are_refused() {
        let p = policy(&[]);
        for url in [
            "ftp://example.com/",
            "http://u:p@example.com/",
            "http://example.com/#x",
            "http://exa mple.com/",
            "not a url",
            "http://a_b$.com/",
        ] {
            assert_eq!(reason(url, Origin::Operator, &p), "malformed", "{url}");
        }
        assert_eq!(
            reason("https://example.com:8443/", Origin::User, &p),
            "port"
        );
        assert_eq!(reason("https://example.com/x", Origin::User, &p), "ok");
    }
}
