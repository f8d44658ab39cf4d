//! Databricks personal access tokens: `POST /api/2.0/token/create`
//! (with `lifetime_seconds` and a comment naming this Gatehouse),
//! `POST /api/2.0/token/delete` by `token_id`, and
//! `GET /api/2.0/preview/scim/v2/Me` for the identity (`userName`).
//!
//! Databricks cannot say which token made a call, so a pasted token's id
//! is found in `GET /api/2.0/token/list` (ids and comments, never values):
//! it is the one token there that this Gatehouse did not mint. When the
//! user holds other tokens the answer is ambiguous and the pasted token is
//! left alone (reported in status and audit) rather than guessed.

use async_trait::async_trait;
use serde_json::{json, Value};

use gatehouse_domain::SecretBytes;

use super::driver::{
    call, take_secret, text_at, time_at, token_text, DriverError, Identity, MintedToken,
    UpstreamDriver,
};

pub struct Databricks {
    pub http: std::sync::Arc<gatehouse_egress::OutboundClient>,
    pub base_url: String,
    /// Written into every minted token's comment.
    pub comment: String,
    /// How the comments of every token this Gatehouse minted (for any
    /// upstream) begin: how it recognises its own tokens in a listing.
    pub own_prefix: String,
}

impl Databricks {
    async fn call(
        &self,
        method: &str,
        path: &str,
        token: &SecretBytes,
        body: Option<Value>,
    ) -> Result<Value, DriverError> {
        let auth = format!("Bearer {}", token_text(token)?);
        call(
            &self.http,
            method,
            &format!("{}{path}", self.base_url),
            ("Authorization", auth),
            body,
        )
        .await
    }
}

#[async_trait]
impl UpstreamDriver for Databricks {
    async fn whoami(&self, token: &SecretBytes) -> Result<Identity, DriverError> {
        let me = self
            .call("GET", "/api/2.0/preview/scim/v2/Me", token, None)
            .await?;
        let user = text_at(&me, "/userName")
            .ok_or_else(|| DriverError::Upstream("no userName in SCIM Me".into()))?;
        Ok(Identity {
            user,
            token_id: None,
        })
    }

    async fn mint(
        &self,
        auth: &SecretBytes,
        lifetime_seconds: i64,
    ) -> Result<MintedToken, DriverError> {
        let body = json!({ "lifetime_seconds": lifetime_seconds, "comment": self.comment });
        let mut answer = self
            .call("POST", "/api/2.0/token/create", auth, Some(body))
            .await?;
        let value = take_secret(&mut answer, "/token_value")
            .ok_or_else(|| DriverError::Upstream("no token_value in answer".into()))?;
        let token_id = text_at(&answer, "/token_info/token_id")
            .ok_or_else(|| DriverError::Upstream("no token_info.token_id in answer".into()))?;
        Ok(MintedToken {
            token_id,
            value,
            expires_at: time_at(&answer, "/token_info/expiry_time"),
        })
    }

    async fn revoke(&self, auth: &SecretBytes, token_id: &str) -> Result<(), DriverError> {
        let body = json!({ "token_id": token_id });
        self.call("POST", "/api/2.0/token/delete", auth, Some(body))
            .await
            .map(|_| ())
    }

    async fn own_token_id(&self, token: &SecretBytes) -> Result<Option<String>, DriverError> {
        let list = self.call("GET", "/api/2.0/token/list", token, None).await?;
        let foreign: Vec<String> = list
            .get("token_infos")
            .and_then(Value::as_array)
            .map(|infos| {
                infos
                    .iter()
                    .filter(|i| {
                        !i.get("comment")
                            .and_then(Value::as_str)
                            .is_some_and(|c| c.starts_with(&self.own_prefix))
                    })
                    .filter_map(|i| text_at(i, "/token_id"))
                    .collect()
            })
            .unwrap_or_default();
        Ok(match foreign.as_slice() {
            [only] => Some(only.clone()),
            _ => None,
        })
    }
}
