//! Building the one outbound client (SPEC §12) for a server, and the
//! check a user-supplied target passes when it is saved.
//!
//! The exceptions are the proxy's (`egress.allow_private_cidrs`,
//! `egress.static_hosts`); the listeners it must never reach are the ones
//! this server bound. Every refusal is audited (`outbound.refused`,
//! outcome `denied:<reason>`) by the client itself, so no caller can
//! forget; callers add their own record under the owner they act for.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use gatehouse_domain::audit::AuditEvent;
use gatehouse_domain::clock::Clock;
use gatehouse_domain::egress::outbound::{Origin, OutboundPolicy};
use gatehouse_egress::{OutboundClient, OutboundError};
use gatehouse_store::Store;

use crate::config::Config;
use crate::error::ApiError;
use crate::startup::StartError;

/// A whole outbound request (lookup, connect, answer) unless the caller
/// sets a shorter one.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// The client for a server listening on `own_listeners`.
pub fn client(
    config: &Config,
    own_listeners: &[SocketAddr],
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
) -> Result<Arc<OutboundClient>, StartError> {
    let policy = OutboundPolicy {
        egress: config.egress.policy(),
        own_listeners: own_listeners.to_vec(),
    };
    let resolver = config.egress.resolver();
    let tls = gatehouse_egress::tls::upstream_config(&config.egress.upstream_trust())
        .map_err(StartError::Trust)?;
    let audit = Arc::new(
        move |target: &str, refused: &gatehouse_domain::egress::outbound::Refused| {
            tracing::warn!(%target, "outbound request refused: {refused}");
            let mut event =
                AuditEvent::new("outbound.refused", &format!("denied:{}", refused.reason()));
            event.actor = "gatehouse".into();
            event.target = target.to_string();
            let (store, now) = (store.clone(), clock.now());
            tokio::spawn(async move {
                if let Err(e) = store.append_audit(event, now).await {
                    tracing::warn!("could not audit a refused outbound request: {e}");
                }
            });
        },
    );
    Ok(Arc::new(
        OutboundClient::new(policy, resolver, tls, REQUEST_TIMEOUT).with_refusal_hook(audit),
    ))
}

/// A user-supplied target (a hook's `forward_to`) at the moment it is
/// saved: `400 forward_to_refused` saying why, or the URL as parsed.
pub async fn check_user_target(
    client: &OutboundClient,
    field: &str,
    text: &str,
) -> Result<(), ApiError> {
    client
        .check_saved(text, Origin::User)
        .await
        .map(|_| ())
        .map_err(|e| ApiError::BadRequest {
            code: "forward_to_refused",
            message: match &e {
                OutboundError::Refused(r) => format!("{field} is refused ({}): {r}", r.reason()),
                _ => format!("{field} is refused ({}): {e}", e.reason()),
            },
        })
}
