//! Authentication: the single path from a request to a [`Principal`].
//!
//! Every authenticated route takes a `Principal` argument; its extractor
//! calls [`Authenticator::authenticate`], which calls
//! [`Authenticator::verify`], which calls the domain's one token verifier
//! (signature, claims *and* revocation). No route reads a token any other
//! way. A test enumerates the router to prove it. The extractors then
//! hold the caller to the matched route's rule (`access.rs`).

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, Method};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use gatehouse_domain::clock::{Clock, UnixTime};
use gatehouse_domain::token::claims::new_claims;
use gatehouse_domain::token::{jws, verify_token_cached, Claims, TokenError, TokenPolicy};
use gatehouse_domain::{CredentialClass, Email, Principal, Role, ScopeSet};
use gatehouse_store::Store;

use crate::config::IdentityConfig;
use crate::error::ApiError;
use crate::keys::SigningKeys;
use crate::revocation::Revocations;
use crate::state::AppState;

pub const SESSION_COOKIE: &str = "gatehouse_session";

pub struct Authenticator {
    pub keys: SigningKeys,
    pub revocations: Revocations,
    pub policy: TokenPolicy,
    pub clock: Arc<dyn Clock>,
    pub store: Arc<dyn Store>,
    pub identity: IdentityConfig,
    /// Which refused token uses are audited: a few per source a minute,
    /// a bounded number in all, so garbage tokens cannot flood the audit
    /// log (or memory) from any number of addresses.
    pub refusal_audit: crate::rate_limit::RefusalAudit,
    pub cache: crate::token_cache::TokenCache,
    /// Refused presentations, for `/metrics`.
    pub refusals: std::sync::atomic::AtomicU64,
}

enum Presented<'a> {
    Bearer(&'a str),
    Cookie(&'a str),
    TrustedHeader(Email),
}

fn cookie_value<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

impl Authenticator {
    /// The one token check: signature, claims, lifetime, revocation.
    pub fn verify(&self, token: &str) -> Result<Claims, TokenError> {
        verify_token_cached(
            token,
            &self.keys,
            &self.revocations,
            &self.cache,
            &self.policy,
            self.clock.now(),
        )
    }

    fn presented<'a>(
        &self,
        headers: &'a HeaderMap,
        peer: Option<IpAddr>,
    ) -> Result<Option<Presented<'a>>, ApiError> {
        if let Some(value) = headers.get(header::AUTHORIZATION) {
            let text = value.to_str().map_err(|_| ApiError::Unauthenticated)?;
            let (scheme, token) = text.split_once(' ').ok_or(ApiError::Unauthenticated)?;
            if !scheme.eq_ignore_ascii_case("bearer") {
                return Err(ApiError::Unauthenticated);
            }
            return Ok(Some(Presented::Bearer(token.trim())));
        }
        if let Some(token) = cookie_value(headers, SESSION_COOKIE) {
            return Ok(Some(Presented::Cookie(token)));
        }
        // The identity header counts only from a trusted proxy; from any
        // other peer it is ignored as if absent.
        if let (Some(name), Some(peer)) = (&self.identity.header, peer) {
            let trusted = self
                .identity
                .trusted_proxy_cidrs
                .iter()
                .any(|net| net.contains(&peer));
            if trusted {
                if let Some(v) = headers.get(name.as_str()) {
                    let email = v
                        .to_str()
                        .ok()
                        .and_then(|s| Email::parse(s).ok())
                        .ok_or_else(|| {
                            ApiError::bad_request(format!(
                                "the {name} header is not an email address"
                            ))
                        })?;
                    return Ok(Some(Presented::TrustedHeader(email)));
                }
            }
        }
        Ok(None)
    }

    pub async fn authenticate(
        &self,
        method: &Method,
        headers: &HeaderMap,
        peer: Option<IpAddr>,
    ) -> Result<Principal, ApiError> {
        let presented = self
            .presented(headers, peer)?
            .ok_or(ApiError::Unauthenticated)?;
        let claims = match presented {
            Presented::Bearer(token) => self.check(token, peer)?,
            Presented::Cookie(token) => {
                let claims = self.check(token, peer)?;
                check_same_origin(method, headers)?;
                claims
            }
            // The proxy in front authenticates the browser by its own
            // cookie, so a cross-site form reaches us with the header just
            // the same: the same Origin rule as for our cookie.
            Presented::TrustedHeader(email) => {
                check_same_origin(method, headers)?;
                return self.trusted_header_principal(email).await;
            }
        };
        // A token whose owner no longer exists has no one to act for.
        let owner = Email::parse(&claims.owner).map_err(|_| ApiError::Unauthenticated)?;
        let record = self.store.owner(&owner).await?.ok_or_else(|| {
            ApiError::forbidden(
                "owner_unknown",
                "the owner of this credential does not exist",
            )
        })?;
        let scopes = ScopeSet::parse(&claims.scope).map_err(|_| ApiError::Unauthenticated)?;
        Ok(Principal {
            subject: claims.sub,
            owner,
            class: claims.cls,
            scopes,
            role: record.role,
            jti: Some(claims.jti),
            expires_at: Some(claims.exp),
        })
    }

    pub(crate) fn check(&self, token: &str, peer: Option<IpAddr>) -> Result<Claims, ApiError> {
        self.verify(token).map_err(|e| {
            tracing::info!(reason = e.code(), "token refused");
            self.audit_refusal(&e, peer);
            match e {
                TokenError::RevocationUnavailable => ApiError::Unavailable(
                    "revocation state cannot be confirmed; refusing all tokens".into(),
                ),
                _ => ApiError::Unauthenticated,
            }
        })
    }

    async fn trusted_header_principal(&self, email: Email) -> Result<Principal, ApiError> {
        let record = self.store.owner(&email).await?.ok_or_else(|| {
            ApiError::forbidden("owner_unknown", "this identity is not a registered owner")
        })?;
        Ok(Principal {
            subject: email.as_str().to_string(),
            owner: email,
            class: CredentialClass::Session,
            scopes: ScopeSet::for_role(record.role),
            role: record.role,
            jti: None,
            expires_at: None,
        })
    }

    /// The refused use goes to the audit log without the token; the
    /// owner is left empty because an unverified token names no one.
    pub(crate) fn audit_refusal(&self, e: &TokenError, peer: Option<IpAddr>) {
        self.refusals
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let source = peer.unwrap_or(IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED));
        let now = self.now();
        if !self.refusal_audit.admit(source, now) {
            return;
        }
        let mut event =
            gatehouse_domain::audit::AuditEvent::new("token.use", &format!("denied:{}", e.code()));
        event.actor = source.to_string();
        let store = self.store.clone();
        tokio::spawn(async move {
            if let Err(err) = store.append_audit(event, now).await {
                tracing::warn!("could not audit a refused token: {err}");
            }
        });
    }

    /// Signs a new token. Its `iat` is placed after every subject or owner
    /// watermark the store holds for it (the domain's
    /// `token::watermark::issued_at`), so a token minted in the same second
    /// as a "revoke everything" is not born revoked, and a later
    /// revocation, whose watermark reaches this `iat`, covers it. Recording
    /// the token checks that again under the store's writers' lock.
    pub async fn issue(
        &self,
        class: CredentialClass,
        subject: &str,
        owner: &Email,
        scopes: ScopeSet,
        ttl: Option<i64>,
    ) -> Result<(String, Claims), ApiError> {
        let (kid, key) = self
            .keys
            .active()
            .ok_or_else(|| ApiError::internal("no active signing key"))?;
        let parent = gatehouse_domain::token::watermark::parent_subject(class, subject);
        let floor = self.store.issuance_floor(owner, subject, parent).await?;
        let iat = gatehouse_domain::token::watermark::issued_at(self.now(), floor);
        let claims = new_claims(&self.policy, class, subject, owner, scopes, ttl, iat)
            .map_err(|e| ApiError::bad_request(e.to_string()))?;
        Ok((jws::sign(&claims, &kid, &key), claims))
    }

    /// Mints a human session for an owner.
    pub async fn issue_session(
        &self,
        owner: &Email,
        role: Role,
    ) -> Result<(String, Claims), ApiError> {
        self.issue(
            CredentialClass::Session,
            owner.as_str(),
            owner,
            ScopeSet::for_role(role),
            None,
        )
        .await
    }

    pub fn now(&self) -> UnixTime {
        self.clock.now()
    }
}

/// The credential a request presented, kept to check again later through
/// the one verifier (a long-lived MCP session, re-checked when the
/// revocation view changes): only the headers [`Authenticator::authenticate`]
/// reads, marked sensitive, and the peer. Never printed.
#[derive(Clone)]
pub struct Presentation {
    headers: HeaderMap,
    peer: Option<IpAddr>,
}

impl std::fmt::Debug for Presentation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Presentation(<redacted>)")
    }
}

impl Authenticator {
    /// What [`Authenticator::reauthenticate`] will present again.
    pub fn presentation(&self, headers: &HeaderMap, peer: Option<IpAddr>) -> Presentation {
        let mut kept = HeaderMap::new();
        let mut keep = |name: &str| {
            for v in headers.get_all(name) {
                if let Ok(name) = header::HeaderName::from_bytes(name.as_bytes()) {
                    let mut v = v.clone();
                    v.set_sensitive(true);
                    kept.append(name, v);
                }
            }
        };
        keep(header::AUTHORIZATION.as_str());
        keep(header::COOKIE.as_str());
        if let Some(name) = &self.identity.header {
            keep(name.as_str());
        }
        Presentation {
            headers: kept,
            peer,
        }
    }

    /// The same credential through the one verifier again (revocation,
    /// expiry, the owner's existence), as a read would be.
    pub async fn reauthenticate(&self, p: &Presentation) -> Result<Principal, ApiError> {
        self.authenticate(&Method::GET, &p.headers, p.peer).await
    }
}

/// Writes authenticated by what a browser sends by itself (our session
/// cookie, or a trusted proxy's identity header) must come from our own
/// pages (the console's forms included). Browsers say where a request
/// comes from in `Sec-Fetch-Site` (fetch metadata): anything but
/// `same-origin` (or `none`, a person's own navigation) is refused.
/// `Origin`, when it names an origin, must match `Host`. `Origin: null`
/// (sandboxed frames, privacy redirects) is foreign, except when fetch
/// metadata vouches for it: under the console's `Referrer-Policy:
/// no-referrer` a browser sends `null` from our own forms, with
/// `Sec-Fetch-Site: same-origin`. A write with no `Origin` at all is not a
/// cross-origin browser request (browsers always add it there), so it
/// passes; the cookie is also `SameSite=Strict`, and console forms carry
/// a CSRF token bound to the session.
pub fn check_same_origin(method: &Method, headers: &HeaderMap) -> Result<(), ApiError> {
    if matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS) {
        return Ok(());
    }
    let refused = || {
        ApiError::forbidden(
            "cross_origin",
            "cross-origin request with a session cookie refused",
        )
    };
    let site = match headers.get("sec-fetch-site").map(|v| v.to_str()) {
        None => None,
        Some(Ok(site @ ("same-origin" | "none"))) => Some(site),
        Some(_) => return Err(refused()),
    };
    let Some(origin) = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()) else {
        return Ok(());
    };
    if origin == "null" {
        return match site {
            Some("same-origin") => Ok(()),
            _ => Err(refused()),
        };
    }
    let host = headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let origin_host = origin.split_once("://").map(|(_, h)| h).unwrap_or_default();
    if !host.is_empty() && origin_host.eq_ignore_ascii_case(host) {
        Ok(())
    } else {
        Err(refused())
    }
}

/// The peer address, when the server was started with connect info.
pub fn peer_ip(parts: &Parts) -> Option<IpAddr> {
    parts
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(addr)| addr.ip())
}

impl FromRequestParts<AppState> for Principal {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let principal = state
            .auth
            .authenticate(&parts.method, &parts.headers, peer_ip(parts))
            .await?;
        // The matched route's rule (scope, classes, operator), before the
        // handler runs.
        crate::access::admit(state, parts, &principal).await?;
        Ok(principal)
    }
}

/// The session cookie for a freshly issued session token.
pub fn session_cookie(token: &str, max_age: i64, secure: bool) -> String {
    format!(
        "{SESSION_COOKIE}={token}; Path=/; Max-Age={max_age}; HttpOnly; SameSite=Strict{}",
        if secure { "; Secure" } else { "" }
    )
}

pub fn peer_ip_of(ConnectInfo(addr): &ConnectInfo<SocketAddr>) -> IpAddr {
    addr.ip()
}

/// A job token, verified by the same one function as every credential,
/// for the job credential route. Everything after verification fails with
/// the route's own uniform 403, never with a telling error.
pub struct JobCredential {
    pub job_id: String,
    pub subject: String,
    pub owner: Email,
    pub jti: String,
}

impl FromRequestParts<AppState> for JobCredential {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let token = match state.auth.presented(&parts.headers, None)? {
            Some(Presented::Bearer(t)) | Some(Presented::Cookie(t)) => t,
            Some(Presented::TrustedHeader(_)) | None => return Err(ApiError::Unauthenticated),
        };
        let claims = state.auth.check(token, peer_ip(parts))?;
        let uniform =
            || ApiError::forbidden("forbidden", "no credentials are available to this token");
        let scopes = ScopeSet::parse(&claims.scope).map_err(|_| uniform())?;
        if crate::access::admit_claims(parts, claims.cls, scopes)?.is_err()
            || claims.cls != CredentialClass::Job
        {
            return Err(uniform());
        }
        let (_, job_id) = claims.sub.split_once('/').ok_or_else(uniform)?;
        Ok(Self {
            job_id: job_id.to_string(),
            owner: Email::parse(&claims.owner).map_err(|_| uniform())?,
            subject: claims.sub.clone(),
            jti: claims.jti,
        })
    }
}
