//! Commands that talk to a running server: `GATEHOUSE_URL` (default
//! `http://127.0.0.1:8270`) and `GATEHOUSE_TOKEN`, or `--url`/`--token`.
//! Errors from the server are shown with its code and message; the token
//! is never printed.

use anyhow::{anyhow, bail, Result};
use clap::Args;
use reqwest::Method;
use serde_json::Value;

#[derive(Args, Clone)]
pub struct RemoteArgs {
    /// The Gatehouse API.
    #[arg(
        long,
        global = true,
        env = "GATEHOUSE_URL",
        default_value = "http://127.0.0.1:8270"
    )]
    pub url: String,
    /// A human session token (prefer the environment: argv is visible to
    /// other users of the machine).
    #[arg(long, global = true, env = "GATEHOUSE_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
}

pub struct Remote {
    base: String,
    token: zeroize::Zeroizing<String>,
    http: reqwest::Client,
}

impl Remote {
    pub fn new(args: &RemoteArgs) -> Result<Self> {
        let token = args
            .token
            .clone()
            .filter(|t| !t.trim().is_empty())
            .ok_or_else(|| {
                anyhow!("set GATEHOUSE_TOKEN (or --token) to a Gatehouse session token")
            })?;
        let base = args.url.trim_end_matches('/').to_string();
        if !(base.starts_with("http://") || base.starts_with("https://")) {
            bail!("GATEHOUSE_URL must start with http:// or https://");
        }
        Ok(Self {
            base,
            token: zeroize::Zeroizing::new(token),
            // Straight to GATEHOUSE_URL, never through a proxy named by
            // HTTP_PROXY/HTTPS_PROXY/ALL_PROXY: these calls carry the
            // caller's token (the one that makes job tokens), and an
            // environment inherited from elsewhere must not hand it to
            // some other proxy on the way.
            http: reqwest::Client::builder()
                .no_proxy()
                .redirect(reqwest::redirect::Policy::none())
                .build()?,
        })
    }

    /// The HTTP client (no redirects followed, no proxy).
    pub fn http(&self) -> &reqwest::Client {
        &self.http
    }

    /// The caller's token, for a request built by hand. Never print it.
    pub fn token(&self) -> &str {
        self.token.as_str()
    }

    /// The API's base URL, without a trailing slash.
    pub fn base(&self) -> &str {
        &self.base
    }

    /// A public GET (no credential sent): the answer's headers and text.
    pub async fn get_public(&self, path: &str) -> Result<(reqwest::header::HeaderMap, String)> {
        let response = self
            .http
            .get(format!("{}{path}", self.base))
            .send()
            .await
            .map_err(|e| anyhow!("cannot reach Gatehouse at {}: {e}", self.base))?;
        let status = response.status();
        if !status.is_success() {
            bail!("GET {path}: Gatehouse answered {}", status.as_u16());
        }
        let headers = response.headers().clone();
        Ok((headers, response.text().await?))
    }

    /// Sends one request; a non-2xx answer becomes an error naming the
    /// server's code and message.
    pub async fn call(&self, method: Method, path: &str, body: Option<Value>) -> Result<Value> {
        let body = body.map(|b| zeroize::Zeroizing::new(b.to_string()));
        self.call_with_text(method, path, body).await
    }

    /// As [`Remote::call`], with the JSON body already as text in a
    /// zeroizing buffer (a pasted token, so no copy outlives the call).
    pub async fn call_with_text(
        &self,
        method: Method,
        path: &str,
        body: Option<zeroize::Zeroizing<String>>,
    ) -> Result<Value> {
        let mut request = self
            .http
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(self.token.as_str());
        if let Some(body) = body {
            request = request
                .header("content-type", "application/json")
                .body(body.to_string());
        }
        let response = request
            .send()
            .await
            .map_err(|e| anyhow!("cannot reach Gatehouse at {}: {e}", self.base))?;
        let status = response.status();
        let text = response.text().await.unwrap_or_default();
        let value: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
        if !status.is_success() {
            let code = value["error"]["code"].as_str().unwrap_or("error");
            let message = value["error"]["message"].as_str().unwrap_or("");
            bail!("Gatehouse answered {}: {code}: {message}", status.as_u16());
        }
        Ok(value)
    }
}
