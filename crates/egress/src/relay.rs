//! The relay, for SDKs that take a base URL but neither a proxy nor a CA:
//! `ANY /relay/{host}/{path}` on the API port goes to
//! `https://{host}/{path}` after the same checks as the proxy, with the
//! same swapping and echo guard.
//!
//! The job token comes as `Authorization: Bearer <job token>` (and is then
//! consumed: the upstream never sees it, so an `inject` rule can supply
//! the real `Authorization`), or in `X-Gatehouse-Job-Token`, in which case
//! the request's own `Authorization` (typically holding a placeholder) is
//! forwarded with its placeholder swapped.

use std::net::IpAddr;

use gatehouse_domain::egress::parse_target;
use gatehouse_domain::secret::SecretBytes;
use http::{header, HeaderMap, Request, Response};

use crate::admit::Context;
use crate::refusal::Refusal;
use crate::{Body, Engine};

pub const JOB_TOKEN_HEADER: &str = "x-gatehouse-job-token";

/// The relay's token, removed from the headers.
fn take_token(headers: &mut HeaderMap) -> Option<SecretBytes> {
    let token = |s: &str| SecretBytes::new(s.trim().as_bytes().to_vec());
    if let Some(v) = headers.remove(JOB_TOKEN_HEADER) {
        return v.to_str().ok().map(token);
    }
    let v = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, presented) = v.trim().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("bearer") {
        return None;
    }
    let presented = token(presented);
    headers.remove(header::AUTHORIZATION);
    Some(presented)
}

impl Engine {
    /// Relays `req` (whose URI path is `/{path}` plus query, already cut
    /// off the `/relay/{host}` prefix) to `https://{host}`.
    pub async fn relay(&self, peer: IpAddr, host: &str, mut req: Request<Body>) -> Response<Body> {
        let mut ctx = Context::default();
        match self.relay_inner(peer, host, &mut req, &mut ctx).await {
            Ok(resp) => resp,
            Err(refusal) => {
                let refusal = match refusal {
                    // The relay is an origin server to its caller, not a proxy.
                    Refusal::ProxyAuth => Refusal::RelayAuth,
                    other => other,
                };
                self.refuse(refusal, &ctx, peer)
            }
        }
    }

    async fn relay_inner(
        &self,
        peer: IpAddr,
        host: &str,
        req: &mut Request<Body>,
        ctx: &mut Context,
    ) -> Result<Response<Body>, Refusal> {
        self.throttle(peer)?;
        let token = take_token(req.headers_mut()).ok_or(Refusal::ProxyAuth)?;
        let lease = self.verify(&token, peer).await?;
        ctx.lease = Some(lease.clone());
        let job = &lease.job;
        let target = parse_target(host, 443)?;
        ctx.host = Some(std::sync::Arc::from(target.host().to_string()));
        let view = self.view(job).await?;
        let admitted = self
            .admit(job, &view, target, req.method().as_str(), peer)
            .await?;
        let host_header = match admitted.target.port() {
            443 => admitted
                .target
                .to_string()
                .trim_end_matches(":443")
                .to_string(),
            _ => admitted.target.to_string(),
        };
        // Swapped only for this verified TLS connection.
        let mut upstream = crate::forward::TlsUpstream::connect(self, &admitted).await?;
        let used = crate::forward::prepare_tls(
            self,
            req,
            &admitted.host,
            &host_header,
            &view,
            upstream.verified(),
        )?;
        let body = std::mem::replace(
            req.body_mut(),
            crate::proxy::empty(http::StatusCode::OK).into_body(),
        );
        let mut out = Request::new(body);
        *out.method_mut() = req.method().clone();
        *out.uri_mut() = req.uri().clone();
        *out.headers_mut() = std::mem::take(req.headers_mut());
        let resp = upstream.send(out).await?;
        self.swapped(job, &admitted.host, &used, peer);
        Ok(crate::forward::respond(resp, &view).await)
    }
}
