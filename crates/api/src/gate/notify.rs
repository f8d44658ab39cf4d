//! `approvals.notify_url`: each new pending approval is posted there, so
//! a chat bot or pager can fetch a human. The body carries what deciders
//! see (never a secret value) and no credential.

use serde_json::{json, Value};

use gatehouse_domain::clock::rfc3339;
use gatehouse_domain::egress::outbound::Origin;
use gatehouse_store::ApprovalRecord;

use crate::state::AppState;

/// Fire and forget: a slow or failing receiver never delays the request.
pub fn announce(st: &AppState, approval: &ApprovalRecord, params: &Value) {
    let Some(url) = st.config.approvals.notify_url.clone() else {
        return;
    };
    let body = json!({
        "event": "approval.pending",
        "approval_id": approval.id,
        "owner": approval.owner.as_str(),
        "verb": approval.verb,
        "params": params,
        "requester": {
            "cls": approval.requester.class.as_str(),
            "subject": approval.requester.subject,
        },
        "required": approval.required,
        "expires_at": rfc3339(approval.expires_at),
        "location": format!("/v1/approvals/{}", approval.id),
    });
    let outbound = st.outbound.clone();
    let id = approval.id.clone();
    tokio::spawn(async move {
        // The operator configured the URL: any port; the address rule and
        // the own-listener rule hold (a refusal is audited by the client).
        let request = match outbound
            .request(reqwest::Method::POST, url.as_str(), Origin::Operator)
            .await
        {
            Ok(r) => r,
            Err(e) => {
                tracing::warn!(approval = %id, "approval notification not sent: {e}");
                return;
            }
        };
        match request.json(&body).send().await {
            Ok(r) if r.status().is_success() => {}
            Ok(r) => {
                tracing::warn!(approval = %id, status = %r.status(), "approval notification refused")
            }
            Err(e) => tracing::warn!(approval = %id, "approval notification failed: {e}"),
        }
    });
}
