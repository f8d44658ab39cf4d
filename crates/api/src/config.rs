//! Configuration: an optional TOML file, then `GATEHOUSE_*` environment
//! overrides, validated into a typed [`Config`].
//!
//! The environment is passed in as a map (never read here), so tests feed
//! their own. Besides the `GATEHOUSE_*` keys it carries the OpenSSL
//! variables `SSL_CERT_FILE` and `SSL_CERT_DIR`, which say where the
//! platform's trust store is (`egress.trust`). Unknown keys in the file
//! are an error naming the key.

use ipnet::IpNet;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use thiserror::Error;

use gatehouse_domain::token::policy::{class_maximum, MAX_CLOCK_SKEW};
use gatehouse_domain::token::TokenPolicy;
use gatehouse_domain::CredentialClass;

mod approvals;
pub use approvals::ApprovalsConfig;
mod database;
mod mcp;
pub use mcp::McpConfig;
mod server;
pub use server::ServerConfig;

#[derive(Debug, Error)]
pub enum ConfigError {
    #[error("configuration file {path}: {message}")]
    File { path: String, message: String },
    #[error("environment variable {var}: {message}")]
    Env { var: String, message: String },
    #[error("configuration key {key}: {message}")]
    Invalid { key: String, message: String },
}

fn invalid(key: &str, message: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        key: key.into(),
        message: message.into(),
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    listen: Option<String>,
    data_dir: Option<String>,
    database_url: Option<String>,
    master_key: Option<String>,
    bootstrap_code: Option<String>,
    #[serde(default)]
    identity: RawIdentity,
    #[serde(default)]
    tokens: RawTokens,
    #[serde(default)]
    revocation: RawRevocation,
    #[serde(default)]
    jobs: RawJobs,
    #[serde(default)]
    egress: RawEgress,
    #[serde(default)]
    approvals: approvals::RawApprovals,
    #[serde(default)]
    server: server::RawServer,
    #[serde(default)]
    database: database::RawDatabase,
    #[serde(default)]
    mcp: mcp::RawMcp,
    /// `[[upstream]]` entries (file only: arrays have no env override).
    #[serde(default)]
    upstream: Vec<upstream::RawUpstream>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawJobs {
    owner_cache_size: Option<i64>,
    placeholder_prefix: Option<String>,
}

use egress::RawEgress;
pub use egress::{EgressConfig, JudgeConfig};

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRevocation {
    max_staleness_seconds: Option<i64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawIdentity {
    trusted_proxy_cidrs: Option<Vec<String>>,
    header: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTokens {
    clock_skew_seconds: Option<i64>,
    session_ttl_seconds: Option<i64>,
    api_ttl_seconds: Option<i64>,
    agent_ttl_seconds: Option<i64>,
    job_ttl_seconds: Option<i64>,
    issuer: Option<String>,
    audience: Option<String>,
}

#[derive(Clone, Copy)]
enum Kind {
    Text,
    Integer,
    List,
    /// `key=number` pairs, comma-separated.
    IntegerMap,
    /// `key=value` pairs, comma-separated.
    Map,
}

/// Every key that the environment may set: (section, key, kind).
const KEYS: &[(&str, &str, Kind)] = &[
    ("", "listen", Kind::Text),
    ("", "data_dir", Kind::Text),
    ("", "database_url", Kind::Text),
    ("", "master_key", Kind::Text),
    ("", "bootstrap_code", Kind::Text),
    ("identity", "trusted_proxy_cidrs", Kind::List),
    ("identity", "header", Kind::Text),
    ("tokens", "clock_skew_seconds", Kind::Integer),
    ("tokens", "session_ttl_seconds", Kind::Integer),
    ("tokens", "api_ttl_seconds", Kind::Integer),
    ("tokens", "agent_ttl_seconds", Kind::Integer),
    ("tokens", "job_ttl_seconds", Kind::Integer),
    ("tokens", "issuer", Kind::Text),
    ("tokens", "audience", Kind::Text),
    ("revocation", "max_staleness_seconds", Kind::Integer),
    ("jobs", "owner_cache_size", Kind::Integer),
    ("jobs", "placeholder_prefix", Kind::Text),
    ("egress", "placeholder_ttl_seconds", Kind::Integer),
    ("egress", "ca_overlap_seconds", Kind::Integer),
    ("database", "max_connections", Kind::Integer),
    ("database", "statement_timeout_ms", Kind::Integer),
    ("approvals", "ttl_seconds", Kind::Integer),
    ("approvals", "gated_verbs", Kind::List),
    ("approvals", "required", Kind::IntegerMap),
    ("approvals", "notify_url", Kind::Text),
    ("egress", "listen", Kind::Text),
    ("egress", "allowed_ports", Kind::List),
    ("egress", "allow_private_cidrs", Kind::List),
    ("egress", "static_hosts", Kind::Map),
    ("egress", "extra_root_certs", Kind::List),
    ("egress", "trust", Kind::Text),
    ("egress", "tunnel_idle_seconds", Kind::Integer),
    ("egress", "max_connections_per_job", Kind::Integer),
    ("egress.judge", "url", Kind::Text),
    ("egress.judge", "timeout_ms", Kind::Integer),
    ("server", "header_timeout_seconds", Kind::Integer),
    ("server", "max_connections", Kind::Integer),
    ("mcp", "hold_seconds", Kind::Integer),
];

fn env_name(section: &str, key: &str) -> String {
    if section.is_empty() {
        format!("GATEHOUSE_{}", key.to_ascii_uppercase())
    } else {
        format!(
            "GATEHOUSE_{}_{}",
            section.replace('.', "_").to_ascii_uppercase(),
            key.to_ascii_uppercase()
        )
    }
}

/// A secret-bearing config string: never printed.
#[derive(Clone)]
pub struct Sensitive(pub zeroize::Zeroizing<String>);

impl std::fmt::Debug for Sensitive {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("********")
    }
}

#[derive(Debug, Clone)]
pub struct IdentityConfig {
    pub trusted_proxy_cidrs: Vec<IpNet>,
    /// Lower-case header name carrying the authenticated email.
    pub header: Option<String>,
}

#[derive(Debug, Clone)]
pub struct Config {
    pub listen: SocketAddr,
    pub data_dir: PathBuf,
    /// `None`: the embedded SQLite store under `data_dir`.
    pub database_url: Option<Sensitive>,
    pub master_key: Option<Sensitive>,
    pub bootstrap_code: Option<Sensitive>,
    pub identity: IdentityConfig,
    pub tokens: TokenPolicy,
    /// How long a replica may go without confirming its revocation view
    /// before it refuses every token (503).
    pub revocation_max_staleness: std::time::Duration,
    /// Bound of the job → owner cache.
    pub owner_cache_size: usize,
    /// Start of every placeholder, so tools that check a token's shape
    /// still accept one.
    pub placeholder_prefix: String,
    pub placeholder_ttl_seconds: i64,
    pub approvals: ApprovalsConfig,
    /// Upstreams whose tokens Gatehouse bootstraps and rotates (SPEC §8).
    pub upstreams: Vec<upstream::UpstreamConfig>,
    pub egress: EgressConfig,
    /// The API listener's defences against slow and numerous clients.
    pub server: ServerConfig,
    /// `[database]`: pool size and statement timeout.
    pub database: gatehouse_store::PoolSettings,
    /// The MCP gateway (SPEC §13).
    pub mcp: McpConfig,
}

impl Config {
    /// Loads from file text (if any) and the environment map.
    pub fn load(
        file: Option<(&str, &str)>,
        env: &BTreeMap<String, String>,
    ) -> Result<Self, ConfigError> {
        let mut table: toml::Table = match file {
            Some((path, text)) => toml::from_str(text).map_err(|e| ConfigError::File {
                path: path.into(),
                message: e.message().to_string(),
            })?,
            None => toml::Table::new(),
        };
        apply_env(&mut table, env)?;
        let raw: RawConfig =
            toml::Value::Table(table)
                .try_into()
                .map_err(|e: toml::de::Error| ConfigError::File {
                    path: file.map_or("(environment)", |(p, _)| p).into(),
                    message: e.message().to_string(),
                })?;
        let mut config = Self::validate(raw)?;
        config.egress.platform_store = gatehouse_egress::trust::PlatformStore::from_env(env);
        Ok(config)
    }

    fn validate(raw: RawConfig) -> Result<Self, ConfigError> {
        let listen_text = raw.listen.unwrap_or_else(|| "127.0.0.1:8270".into());
        let listen = listen_text
            .parse()
            .map_err(|_| invalid("listen", format!("{listen_text:?} is not an address:port")))?;
        let data_dir = PathBuf::from(raw.data_dir.unwrap_or_else(|| "./gatehouse-data".into()));
        let nonempty = |key: &str, v: Option<String>| -> Result<Option<Sensitive>, ConfigError> {
            match v {
                Some(s) if s.trim().is_empty() => Err(invalid(key, "is empty")),
                Some(s) => Ok(Some(Sensitive(zeroize::Zeroizing::new(s)))),
                None => Ok(None),
            }
        };
        let identity = validate_identity(raw.identity)?;
        let tokens = validate_tokens(raw.tokens)?;
        let staleness = raw.revocation.max_staleness_seconds.unwrap_or(30);
        if !(1..=3600).contains(&staleness) {
            return Err(invalid(
                "revocation.max_staleness_seconds",
                format!("{staleness} is outside 1..=3600"),
            ));
        }
        let owner_cache_size = raw.jobs.owner_cache_size.unwrap_or(10_000);
        if !(1..=10_000_000).contains(&owner_cache_size) {
            return Err(invalid(
                "jobs.owner_cache_size",
                format!("{owner_cache_size} is outside 1..=10000000"),
            ));
        }
        let placeholder_prefix = raw
            .jobs
            .placeholder_prefix
            .unwrap_or_else(|| "gh_ph_".into());
        if placeholder_prefix.len() > 32
            || !placeholder_prefix
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
        {
            return Err(invalid(
                "jobs.placeholder_prefix",
                "at most 32 letters, digits, '_' or '-'",
            ));
        }
        let placeholder_ttl_seconds = raw.egress.placeholder_ttl_seconds.unwrap_or(86_400);
        if !(60..=30 * 86_400).contains(&placeholder_ttl_seconds) {
            return Err(invalid(
                "egress.placeholder_ttl_seconds",
                format!("{placeholder_ttl_seconds} is outside 60..=2592000"),
            ));
        }
        let upstreams = upstream::validate_upstreams(raw.upstream)?;
        let egress = egress::validate(raw.egress)?;
        Ok(Self {
            approvals: approvals::validate(raw.approvals)?,
            server: server::validate(raw.server)?,
            database: database::validate(raw.database)?,
            mcp: mcp::validate(raw.mcp)?,
            upstreams,
            egress,
            owner_cache_size: owner_cache_size as usize,
            placeholder_prefix,
            placeholder_ttl_seconds,
            revocation_max_staleness: std::time::Duration::from_secs(staleness as u64),
            listen,
            data_dir,
            database_url: nonempty("database_url", raw.database_url)?,
            master_key: nonempty("master_key", raw.master_key)?,
            bootstrap_code: nonempty("bootstrap_code", raw.bootstrap_code)?,
            identity,
            tokens,
        })
    }

    /// The effective configuration as TOML, secrets masked.
    pub fn render_masked(&self) -> String {
        let mask = |v: &Option<Sensitive>| {
            if v.is_some() {
                "\"********\""
            } else {
                "\"\" # unset"
            }
        };
        let db = match &self.database_url {
            Some(url) => format!("{:?}", mask_url_password(&url.0)),
            None => format!(
                "{:?} # embedded SQLite",
                self.sqlite_path().display().to_string()
            ),
        };
        let cidrs: Vec<String> = self
            .identity
            .trusted_proxy_cidrs
            .iter()
            .map(|c| format!("{:?}", c.to_string()))
            .collect();
        let t = &self.tokens;
        format!(
            "listen = {:?}\ndata_dir = {:?}\ndatabase_url = {db}\nmaster_key = {}\nbootstrap_code = {}\n\n\
             [identity]\ntrusted_proxy_cidrs = [{}]\nheader = {:?}\n\n\
             [tokens]\nclock_skew_seconds = {}\nsession_ttl_seconds = {}\napi_ttl_seconds = {}\n\
             agent_ttl_seconds = {}\njob_ttl_seconds = {}\nissuer = {:?}\naudience = {:?}\n\n\
             [revocation]\nmax_staleness_seconds = {}\n\n\
             [jobs]\nowner_cache_size = {}\nplaceholder_prefix = {:?}\n\n{}\n{}",
            self.listen.to_string(),
            self.data_dir.display().to_string(),
            if self.master_key.is_some() { "\"********\"" } else { "\"\" # key file in data_dir" },
            mask(&self.bootstrap_code),
            cidrs.join(", "),
            self.identity.header.clone().unwrap_or_default(),
            t.clock_skew,
            t.default_lifetime(CredentialClass::Session),
            t.default_lifetime(CredentialClass::Api),
            t.default_lifetime(CredentialClass::Agent),
            t.default_lifetime(CredentialClass::Job),
            t.issuer,
            t.audience,
            self.revocation_max_staleness.as_secs(),
            self.owner_cache_size,
            self.placeholder_prefix,
            self.egress.render(self.placeholder_ttl_seconds),
            self.approvals.render(),
        ) + "\n"
            + &self.server.render()
            + "\n"
            + &database::render(&self.database)
            + &self.mcp.render()
            + &upstream::render(&self.upstreams)
    }

    pub fn sqlite_path(&self) -> PathBuf {
        self.data_dir.join("gatehouse.db")
    }

    /// The store URL: the configured one, or SQLite under `data_dir`.
    pub fn store_url(&self) -> zeroize::Zeroizing<String> {
        match &self.database_url {
            Some(url) => url.0.clone(),
            None => zeroize::Zeroizing::new(format!("sqlite://{}", self.sqlite_path().display())),
        }
    }

    /// Cookies are `Secure` unless the API listens on loopback only.
    pub fn cookies_secure(&self) -> bool {
        !self.listen.ip().is_loopback()
    }
}

fn mask_url_password(url: &str) -> String {
    // scheme://user:password@host/... → scheme://user:********@host/...
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.into();
    };
    match rest.split_once('@') {
        Some((userinfo, host)) if userinfo.contains(':') => {
            let user = userinfo.split(':').next().unwrap_or_default();
            format!("{scheme}://{user}:********@{host}")
        }
        _ => url.into(),
    }
}

fn validate_identity(raw: RawIdentity) -> Result<IdentityConfig, ConfigError> {
    let mut cidrs = Vec::new();
    for text in raw.trusted_proxy_cidrs.unwrap_or_default() {
        let net = text
            .parse::<IpNet>()
            .or_else(|_| text.parse::<std::net::IpAddr>().map(IpNet::from))
            .map_err(|_| {
                invalid(
                    "identity.trusted_proxy_cidrs",
                    format!("{text:?} is not a CIDR"),
                )
            })?;
        cidrs.push(net);
    }
    let header = match raw.header {
        Some(h) => {
            let ok = !h.is_empty()
                && h.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
            if !ok {
                return Err(invalid(
                    "identity.header",
                    format!("{h:?} is not a header name"),
                ));
            }
            Some(h.to_ascii_lowercase())
        }
        None => None,
    };
    if header.is_some() == cidrs.is_empty() {
        return Err(invalid(
            "identity",
            "trusted_proxy_cidrs and header go together: set both or neither",
        ));
    }
    Ok(IdentityConfig {
        trusted_proxy_cidrs: cidrs,
        header,
    })
}

fn validate_tokens(raw: RawTokens) -> Result<TokenPolicy, ConfigError> {
    let mut policy = TokenPolicy::default();
    if let Some(skew) = raw.clock_skew_seconds {
        if !(0..=MAX_CLOCK_SKEW).contains(&skew) {
            return Err(invalid(
                "tokens.clock_skew_seconds",
                format!("{skew} is outside 0..={MAX_CLOCK_SKEW}"),
            ));
        }
        policy.clock_skew = skew;
    }
    let ttls = [
        (
            CredentialClass::Session,
            raw.session_ttl_seconds,
            "tokens.session_ttl_seconds",
        ),
        (
            CredentialClass::Api,
            raw.api_ttl_seconds,
            "tokens.api_ttl_seconds",
        ),
        (
            CredentialClass::Agent,
            raw.agent_ttl_seconds,
            "tokens.agent_ttl_seconds",
        ),
        (
            CredentialClass::Job,
            raw.job_ttl_seconds,
            "tokens.job_ttl_seconds",
        ),
    ];
    for (class, ttl, key) in ttls {
        if let Some(ttl) = ttl {
            let max = class_maximum(class);
            if !(1..=max).contains(&ttl) {
                return Err(invalid(key, format!("{ttl} is outside 1..={max}")));
            }
            if let Some(i) = CredentialClass::ALL.iter().position(|c| *c == class) {
                policy.defaults[i] = ttl;
            }
        }
    }
    if let Some(iss) = raw.issuer {
        policy.issuer = iss;
    }
    if let Some(aud) = raw.audience {
        policy.audience = aud;
    }
    Ok(policy)
}

fn apply_env(table: &mut toml::Table, env: &BTreeMap<String, String>) -> Result<(), ConfigError> {
    for (section, key, kind) in KEYS {
        let var = env_name(section, key);
        let Some(text) = env.get(&var) else { continue };
        let value = match kind {
            Kind::Text => toml::Value::String(text.clone()),
            Kind::Integer => {
                toml::Value::Integer(text.trim().parse().map_err(|_| ConfigError::Env {
                    var: var.clone(),
                    message: "is not a whole number".into(),
                })?)
            }
            Kind::List => toml::Value::Array(
                text.split(',')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(|s| toml::Value::String(s.into()))
                    .collect(),
            ),
            Kind::IntegerMap => {
                let mut map = toml::Table::new();
                for pair in text.split(',').map(str::trim).filter(|s| !s.is_empty()) {
                    let parsed = pair
                        .split_once('=')
                        .and_then(|(k, v)| Some((k.trim(), v.trim().parse::<i64>().ok()?)));
                    let Some((k, v)) = parsed else {
                        return Err(ConfigError::Env {
                            var: var.clone(),
                            message: format!("{pair:?} is not key=number"),
                        });
                    };
                    map.insert(k.to_string(), toml::Value::Integer(v));
                }
                toml::Value::Table(map)
            }
            Kind::Map => {
                let mut map = toml::Table::new();
                for pair in text.split(',').map(str::trim).filter(|s| !s.is_empty()) {
                    let (k, v) = pair.split_once('=').ok_or_else(|| ConfigError::Env {
                        var: var.clone(),
                        message: format!("{pair:?} is not key=value"),
                    })?;
                    map.insert(k.trim().into(), toml::Value::String(v.trim().into()));
                }
                toml::Value::Table(map)
            }
        };
        let mut target = &mut *table;
        for part in section.split('.').filter(|p| !p.is_empty()) {
            target = match target
                .entry(part.to_string())
                .or_insert_with(|| toml::Value::Table(toml::Table::new()))
            {
                toml::Value::Table(t) => t,
                _ => return Err(invalid(section, "must be a table")),
            };
        }
        target.insert(key.to_string(), value);
    }
    Ok(())
}

mod egress;
pub mod upstream;

#[cfg(test)]
mod tests;
