//! The generic HTTP driver, described wholly in configuration: three
//! request templates (mint, revoke, whoami) and JSON pointers into the
//! answers. `{lifetime_seconds}` and `{token_id}` are filled in; an id
//! goes into a path percent-encoded and into a body JSON-escaped, so an
//! upstream-chosen id cannot reshape the request.

use async_trait::async_trait;
use serde_json::Value;

use gatehouse_domain::SecretBytes;

use super::driver::{
    call, take_secret, text_at, time_at, token_text, DriverError, Identity, MintedToken,
    UpstreamDriver,
};
use crate::config::upstream::{GenericDriver, RequestTemplate};

pub struct Generic {
    pub http: std::sync::Arc<gatehouse_egress::OutboundClient>,
    pub base_url: String,
    pub spec: GenericDriver,
}

fn percent_encode(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                char::from(b).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// A JSON string's inside (no quotes), for splicing into a template.
fn json_escaped(s: &str) -> String {
    let quoted = Value::String(s.into()).to_string();
    quoted[1..quoted.len() - 1].to_string()
}

impl Generic {
    async fn send(
        &self,
        template: &RequestTemplate,
        token: &SecretBytes,
        lifetime_seconds: i64,
        token_id: &str,
    ) -> Result<Value, DriverError> {
        let path = template
            .path
            .replace("{token_id}", &percent_encode(token_id));
        let body = template
            .body
            .as_ref()
            .map(|b| {
                let filled = b
                    .replace("{lifetime_seconds}", &lifetime_seconds.to_string())
                    .replace("{token_id}", &json_escaped(token_id));
                serde_json::from_str::<Value>(&filled)
                    .map_err(|_| DriverError::Upstream("body template is not JSON".into()))
            })
            .transpose()?;
        let auth = self.spec.auth_format.replace("{token}", token_text(token)?);
        call(
            &self.http,
            &template.method,
            &format!("{}{path}", self.base_url),
            (&self.spec.auth_header, auth),
            body,
        )
        .await
    }
}

#[async_trait]
impl UpstreamDriver for Generic {
    async fn whoami(&self, token: &SecretBytes) -> Result<Identity, DriverError> {
        let me = self.send(&self.spec.whoami, token, 0, "").await?;
        let user = text_at(&me, &self.spec.identity_pointer)
            .ok_or_else(|| DriverError::Upstream("no identity in whoami answer".into()))?;
        let token_id = self
            .spec
            .whoami_token_id_pointer
            .as_ref()
            .and_then(|p| text_at(&me, p));
        Ok(Identity { user, token_id })
    }

    async fn mint(
        &self,
        auth: &SecretBytes,
        lifetime_seconds: i64,
    ) -> Result<MintedToken, DriverError> {
        let mut answer = self
            .send(&self.spec.mint, auth, lifetime_seconds, "")
            .await?;
        let value = take_secret(&mut answer, &self.spec.token_pointer)
            .ok_or_else(|| DriverError::Upstream("no token in mint answer".into()))?;
        let token_id = text_at(&answer, &self.spec.token_id_pointer)
            .ok_or_else(|| DriverError::Upstream("no token id in mint answer".into()))?;
        let expires_at = self
            .spec
            .expires_at_pointer
            .as_ref()
            .and_then(|p| time_at(&answer, p));
        Ok(MintedToken {
            token_id,
            value,
            expires_at,
        })
    }

    async fn revoke(&self, auth: &SecretBytes, token_id: &str) -> Result<(), DriverError> {
        self.send(&self.spec.revoke, auth, 0, token_id)
            .await
            .map(|_| ())
    }

    async fn own_token_id(&self, token: &SecretBytes) -> Result<Option<String>, DriverError> {
        Ok(self.whoami(token).await?.token_id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_cannot_reshape_a_request() {
        assert_eq!(percent_encode("a/../b?c"), "a%2F..%2Fb%3Fc");
        assert_eq!(json_escaped(r#"x","admin":true"#), r#"x\",\"admin\":true"#);
    }
}
