//! `[[upstream]]` entries (SPEC §8): which upstream services Gatehouse
//! holds a rotating token for, whose they are, and how to talk to them.
//!
//! Validation refuses anything the rotation could only discover later:
//! duplicate names, an owner that is not an email, a base URL that is not
//! plain http(s), a lifetime that does not outlast the rotation interval
//! (the overlap that keeps a token valid while its successor is minted),
//! and a generic driver missing a request or a JSON pointer.

use serde::Deserialize;
use std::collections::BTreeSet;

use gatehouse_domain::names::validate_agent_name;
use gatehouse_domain::Email;

use super::{invalid, ConfigError};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawUpstream {
    name: String,
    owner: String,
    driver: String,
    base_url: String,
    rotate_every_seconds: Option<i64>,
    lifetime_seconds: Option<i64>,
    idle: Option<String>,
    generic: Option<RawGeneric>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawGeneric {
    mint: RawRequest,
    revoke: RawRequest,
    whoami: RawRequest,
    token_pointer: String,
    token_id_pointer: String,
    expires_at_pointer: Option<String>,
    identity_pointer: String,
    /// In the whoami answer: the id of the token that made the call, so a
    /// pasted token can be revoked by id.
    whoami_token_id_pointer: Option<String>,
    auth_header: Option<String>,
    auth_format: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRequest {
    method: String,
    path: String,
    body: Option<String>,
}

/// What happens when the owner has no active job or session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IdlePolicy {
    /// Mint nothing; the token lapses at its expiry (the default).
    Expire,
    /// Keep rotating, so the token never lapses.
    KeepAlive,
}

impl IdlePolicy {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Expire => "expire",
            Self::KeepAlive => "keep_alive",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestTemplate {
    pub method: String,
    /// Starts with `/`; may hold `{token_id}`.
    pub path: String,
    /// JSON text; may hold `{lifetime_seconds}` and `{token_id}`.
    pub body: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GenericDriver {
    pub mint: RequestTemplate,
    pub revoke: RequestTemplate,
    pub whoami: RequestTemplate,
    pub token_pointer: String,
    pub token_id_pointer: String,
    pub expires_at_pointer: Option<String>,
    pub identity_pointer: String,
    pub whoami_token_id_pointer: Option<String>,
    pub auth_header: String,
    /// Holds `{token}`.
    pub auth_format: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DriverConfig {
    Databricks,
    Generic(Box<GenericDriver>),
}

impl DriverConfig {
    pub fn name(&self) -> &'static str {
        match self {
            Self::Databricks => "databricks",
            Self::Generic(_) => "generic",
        }
    }
}

#[derive(Debug, Clone)]
pub struct UpstreamConfig {
    pub name: String,
    pub owner: Email,
    pub driver: DriverConfig,
    /// Without a trailing slash.
    pub base_url: String,
    pub rotate_every_seconds: i64,
    pub lifetime_seconds: i64,
    pub idle: IdlePolicy,
}

impl UpstreamConfig {
    /// The host of `base_url`, the one host the token's secret is bound to.
    pub fn host(&self) -> String {
        let rest = self
            .base_url
            .split_once("://")
            .map_or(self.base_url.as_str(), |(_, r)| r);
        let authority = rest.split('/').next().unwrap_or_default();
        let host = match authority.rsplit_once(':') {
            Some((h, port)) if port.bytes().all(|b| b.is_ascii_digit()) => h,
            _ => authority,
        };
        host.trim_start_matches('[')
            .trim_end_matches(']')
            .to_ascii_lowercase()
    }
}

const DEFAULT_ROTATE_EVERY: i64 = 600;
const DEFAULT_LIFETIME: i64 = 900;
/// A day: an upstream token Gatehouse mints is meant to be short-lived.
const MAX_LIFETIME: i64 = 86_400;

pub(super) fn validate_upstreams(
    raw: Vec<RawUpstream>,
) -> Result<Vec<UpstreamConfig>, ConfigError> {
    let mut names = BTreeSet::new();
    let mut out = Vec::with_capacity(raw.len());
    for (i, u) in raw.into_iter().enumerate() {
        let key = |field: &str| format!("upstream[{i}].{field}");
        validate_agent_name(&u.name).map_err(|e| invalid(&key("name"), e.to_string()))?;
        if !names.insert(u.name.clone()) {
            return Err(invalid(
                &key("name"),
                format!("{:?} is configured twice", u.name),
            ));
        }
        let owner = Email::parse(&u.owner)
            .map_err(|_| invalid(&key("owner"), format!("{:?} is not an email", u.owner)))?;
        let base_url = u.base_url.trim_end_matches('/').to_string();
        let scheme_ok = base_url.starts_with("https://") || base_url.starts_with("http://");
        let authority = base_url
            .split_once("://")
            .map(|(_, r)| r)
            .unwrap_or_default();
        if !scheme_ok
            || authority.is_empty()
            || authority.contains('@')
            || authority.contains('?')
            || authority.contains('#')
            || authority
                .chars()
                .any(|c| c.is_whitespace() || c.is_control())
        {
            return Err(invalid(
                &key("base_url"),
                "must be an http:// or https:// URL without credentials, query or fragment",
            ));
        }
        let rotate = u.rotate_every_seconds.unwrap_or(DEFAULT_ROTATE_EVERY);
        let lifetime = u.lifetime_seconds.unwrap_or(DEFAULT_LIFETIME);
        if !(1..=MAX_LIFETIME).contains(&rotate) {
            return Err(invalid(
                &key("rotate_every_seconds"),
                format!("{rotate} is outside 1..={MAX_LIFETIME}"),
            ));
        }
        if !(2..=MAX_LIFETIME).contains(&lifetime) || lifetime <= rotate {
            return Err(invalid(
                &key("lifetime_seconds"),
                format!("{lifetime} must be above rotate_every_seconds ({rotate}) and at most {MAX_LIFETIME}"),
            ));
        }
        let idle = match u.idle.as_deref().unwrap_or("expire") {
            "expire" => IdlePolicy::Expire,
            "keep_alive" => IdlePolicy::KeepAlive,
            other => {
                return Err(invalid(
                    &key("idle"),
                    format!("{other:?} is not expire or keep_alive"),
                ))
            }
        };
        let driver = match (u.driver.as_str(), u.generic) {
            ("databricks", None) => DriverConfig::Databricks,
            ("databricks", Some(_)) => {
                return Err(invalid(
                    &key("generic"),
                    "only the generic driver takes a [generic] table",
                ))
            }
            ("generic", Some(g)) => DriverConfig::Generic(Box::new(validate_generic(g, &key)?)),
            ("generic", None) => {
                return Err(invalid(
                    &key("generic"),
                    "the generic driver needs its mint, revoke and whoami requests",
                ))
            }
            (other, _) => {
                return Err(invalid(
                    &key("driver"),
                    format!("{other:?} is not databricks or generic"),
                ))
            }
        };
        out.push(UpstreamConfig {
            name: u.name,
            owner,
            driver,
            base_url,
            rotate_every_seconds: rotate,
            lifetime_seconds: lifetime,
            idle,
        });
    }
    Ok(out)
}

fn validate_generic(
    g: RawGeneric,
    key: &dyn Fn(&str) -> String,
) -> Result<GenericDriver, ConfigError> {
    let request = |field: &str, r: RawRequest| -> Result<RequestTemplate, ConfigError> {
        let method = r.method.to_ascii_uppercase();
        if !["GET", "POST", "PUT", "PATCH", "DELETE"].contains(&method.as_str()) {
            return Err(invalid(
                &key(&format!("generic.{field}.method")),
                format!("{:?} is not an HTTP method", r.method),
            ));
        }
        if !r.path.starts_with('/') || r.path.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(invalid(
                &key(&format!("generic.{field}.path")),
                "must start with / and hold no spaces",
            ));
        }
        if let Some(body) = &r.body {
            // The template must be JSON once its placeholders are filled.
            let filled = body
                .replace("{lifetime_seconds}", "1")
                .replace("{token_id}", "x");
            if serde_json::from_str::<serde_json::Value>(&filled).is_err() {
                return Err(invalid(
                    &key(&format!("generic.{field}.body")),
                    "is not a JSON template",
                ));
            }
        }
        Ok(RequestTemplate {
            method,
            path: r.path,
            body: r.body,
        })
    };
    let pointer = |field: &str, p: String| -> Result<String, ConfigError> {
        if p.is_empty() || p.starts_with('/') {
            Ok(p)
        } else {
            Err(invalid(
                &key(&format!("generic.{field}")),
                "a JSON pointer starts with /",
            ))
        }
    };
    let auth_header = g.auth_header.unwrap_or_else(|| "Authorization".into());
    if auth_header.is_empty()
        || !auth_header
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        return Err(invalid(&key("generic.auth_header"), "is not a header name"));
    }
    let auth_format = g.auth_format.unwrap_or_else(|| "Bearer {token}".into());
    if !auth_format.contains("{token}") || auth_format.chars().any(char::is_control) {
        return Err(invalid(&key("generic.auth_format"), "must contain {token}"));
    }
    Ok(GenericDriver {
        mint: request("mint", g.mint)?,
        revoke: request("revoke", g.revoke)?,
        whoami: request("whoami", g.whoami)?,
        token_pointer: pointer("token_pointer", g.token_pointer)?,
        token_id_pointer: pointer("token_id_pointer", g.token_id_pointer)?,
        expires_at_pointer: g
            .expires_at_pointer
            .map(|p| pointer("expires_at_pointer", p))
            .transpose()?,
        identity_pointer: pointer("identity_pointer", g.identity_pointer)?,
        whoami_token_id_pointer: g
            .whoami_token_id_pointer
            .map(|p| pointer("whoami_token_id_pointer", p))
            .transpose()?,
        auth_header,
        auth_format,
    })
}

/// The upstreams as TOML, for `--print-config` (nothing here is secret).
pub(super) fn render(upstreams: &[UpstreamConfig]) -> String {
    let mut out = String::new();
    for u in upstreams {
        out.push_str(&format!(
            "\n[[upstream]]\nname = {:?}\nowner = {:?}\ndriver = {:?}\nbase_url = {:?}\n\
             rotate_every_seconds = {}\nlifetime_seconds = {}\nidle = {:?}\n",
            u.name,
            u.owner.as_str(),
            u.driver.name(),
            u.base_url,
            u.rotate_every_seconds,
            u.lifetime_seconds,
            u.idle.as_str(),
        ));
        if let DriverConfig::Generic(g) = &u.driver {
            let req = |r: &RequestTemplate| match &r.body {
                Some(b) => format!(
                    "{{ method = {:?}, path = {:?}, body = {:?} }}",
                    r.method, r.path, b
                ),
                None => format!("{{ method = {:?}, path = {:?} }}", r.method, r.path),
            };
            out.push_str(&format!(
                "[upstream.generic]\nmint = {}\nrevoke = {}\nwhoami = {}\ntoken_pointer = {:?}\n\
                 token_id_pointer = {:?}\nidentity_pointer = {:?}\nauth_header = {:?}\nauth_format = {:?}\n",
                req(&g.mint),
                req(&g.revoke),
                req(&g.whoami),
                g.token_pointer,
                g.token_id_pointer,
                g.identity_pointer,
                g.auth_header,
                g.auth_format,
            ));
            if let Some(p) = &g.expires_at_pointer {
                out.push_str(&format!("expires_at_pointer = {p:?}\n"));
            }
            if let Some(p) = &g.whoami_token_id_pointer {
                out.push_str(&format!("whoami_token_id_pointer = {p:?}\n"));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::super::Config;
    use super::*;
    use std::collections::BTreeMap;

    fn load(file: &str) -> Result<Config, ConfigError> {
        Config::load(Some(("g.toml", file)), &BTreeMap::new())
    }

    const DATABRICKS: &str = "[[upstream]]\nname = \"dbx\"\nowner = \"Ann@Example.com\"\n\
        driver = \"databricks\"\nbase_url = \"https://adb-1.azuredatabricks.net/\"\n";

    #[test]
    fn defaults_follow_the_spec() {
        let c = load(DATABRICKS).unwrap();
        let u = &c.upstreams[0];
        assert_eq!((u.rotate_every_seconds, u.lifetime_seconds), (600, 900));
        assert_eq!(u.idle, IdlePolicy::Expire);
        assert_eq!(u.driver, DriverConfig::Databricks);
        assert_eq!(u.base_url, "https://adb-1.azuredatabricks.net");
        assert_eq!(u.host(), "adb-1.azuredatabricks.net");
        assert_eq!(u.owner.as_str(), "ann@example.com");
        let shown = c.render_masked();
        assert!(shown.contains("[[upstream]]\nname = \"dbx\""), "{shown}");
        assert!(shown.contains("idle = \"expire\""), "{shown}");
        let again = load(&render(&c.upstreams)).unwrap();
        assert_eq!(
            again.upstreams[0].driver, c.upstreams[0].driver,
            "the rendering loads back"
        );
    }

    #[test]
    fn bad_upstreams_are_refused_naming_the_key() {
        let cases = [
            (format!("{DATABRICKS}{DATABRICKS}"), "upstream[1].name"),
            (
                DATABRICKS.replace("Ann@Example.com", "ann"),
                "upstream[0].owner",
            ),
            (
                DATABRICKS.replace("https://adb", "ftp://adb"),
                "upstream[0].base_url",
            ),
            (
                DATABRICKS.replace("https://adb", "https://u:p@adb"),
                "upstream[0].base_url",
            ),
            (
                DATABRICKS.replace("\"dbx\"", "\"Bad Name\""),
                "upstream[0].name",
            ),
            (
                format!("{DATABRICKS}lifetime_seconds = 600\n"),
                "upstream[0].lifetime_seconds",
            ),
            (
                format!("{DATABRICKS}rotate_every_seconds = 0\n"),
                "upstream[0].rotate_every_seconds",
            ),
            (
                format!("{DATABRICKS}idle = \"sometimes\"\n"),
                "upstream[0].idle",
            ),
            (
                DATABRICKS.replace("databricks", "github"),
                "upstream[0].driver",
            ),
            (
                DATABRICKS.replace("databricks", "generic"),
                "upstream[0].generic",
            ),
        ];
        for (file, key) in cases {
            let err = load(&file).unwrap_err().to_string();
            assert!(err.contains(key), "{key}: {err}");
        }
        let err = load(&format!("{DATABRICKS}colour = \"red\"\n"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("colour"), "{err}");
    }

    #[test]
    fn the_generic_driver_needs_every_request_and_pointer() {
        let generic = "[[upstream]]\nname = \"g\"\nowner = \"a@b.co\"\ndriver = \"generic\"\n\
            base_url = \"https://api.example.com\"\n[upstream.generic]\n\
            mint = { method = \"post\", path = \"/tokens\", body = '{\"ttl\": {lifetime_seconds}}' }\n\
            revoke = { method = \"DELETE\", path = \"/tokens/{token_id}\" }\n\
            whoami = { method = \"GET\", path = \"/me\" }\n\
            token_pointer = \"/token\"\ntoken_id_pointer = \"/id\"\nidentity_pointer = \"/email\"\n";
        let c = load(generic).unwrap();
        let DriverConfig::Generic(g) = &c.upstreams[0].driver else {
            panic!("generic expected");
        };
        assert_eq!(g.mint.method, "POST");
        assert_eq!(g.auth_format, "Bearer {token}");
        let again = load(&render(&c.upstreams)).unwrap();
        assert_eq!(
            again.upstreams[0].driver, c.upstreams[0].driver,
            "the rendering loads back"
        );
        for (from, to, key) in [
            ("token_pointer = \"/token\"\n", "", "token_pointer"),
            ("\"/email\"", "\"email\"", "identity_pointer"),
            (
                "'{\"ttl\": {lifetime_seconds}}'",
                "'{ttl: 1'",
                "generic.mint.body",
            ),
            (
                "method = \"GET\"",
                "method = \"FETCH\"",
                "generic.whoami.method",
            ),
            ("path = \"/me\"", "path = \"me\"", "generic.whoami.path"),
        ] {
            let err = load(&generic.replace(from, to)).unwrap_err().to_string();
            assert!(err.contains(key), "{key}: {err}");
        }
    }
}
