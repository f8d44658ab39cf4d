//! The `[egress]` section: the proxy's listener, the exceptions to the
//! address check (each one explicit: private ranges, static host
//! addresses, extra upstream roots), whose roots upstream TLS trusts
//! (`egress.trust`) and the optional judge.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use gatehouse_domain::egress::{parse_target, Cidr, Host, DEFAULT_ALLOWED_PORTS};
use gatehouse_egress::trust::{PlatformStore, Trust, UpstreamTrust};
use serde::Deserialize;

use super::{invalid, ConfigError};

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawEgress {
    pub placeholder_ttl_seconds: Option<i64>,
    listen: Option<String>,
    allowed_ports: Option<Vec<toml::Value>>,
    allow_private_cidrs: Option<Vec<String>>,
    static_hosts: Option<BTreeMap<String, String>>,
    extra_root_certs: Option<Vec<String>>,
    trust: Option<String>,
    tunnel_idle_seconds: Option<i64>,
    max_connections_per_job: Option<i64>,
    ca_overlap_seconds: Option<i64>,
    #[serde(default)]
    judge: RawJudge,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawJudge {
    url: Option<String>,
    timeout_ms: Option<i64>,
}

#[derive(Debug, Clone)]
pub struct JudgeConfig {
    pub url: String,
    pub timeout: Duration,
}

#[derive(Debug, Clone)]
pub struct EgressConfig {
    /// `egress.listen`, default `127.0.0.1:8271`.
    pub listen: SocketAddr,
    pub allowed_ports: Vec<u16>,
    pub allow_private_cidrs: Vec<Cidr>,
    /// Normalised name → address.
    pub static_hosts: BTreeMap<String, IpAddr>,
    pub extra_root_certs: Vec<PathBuf>,
    /// `egress.trust` (default `platform`): whose roots upstream TLS
    /// trusts, besides `extra_root_certs`.
    pub trust: Trust,
    /// Where the platform's store is: `SSL_CERT_FILE` / `SSL_CERT_DIR` from
    /// the environment the configuration was loaded with, else the
    /// system's default.
    pub platform_store: PlatformStore,
    /// `egress.tunnel_idle_seconds` (default 300): a tunnel with no
    /// traffic in either direction this long is closed.
    pub tunnel_idle: Duration,
    /// `egress.max_connections_per_job` (default 256): open connections a
    /// job may hold through the proxy; the next one is `429`.
    pub max_connections_per_job: usize,
    /// `egress.ca_overlap_seconds` (default 7 days): after `gatehouse keys
    /// rotate-ca`, how long the previous CA stays trusted (served in
    /// `ca.pem`, and chained to through the cross certificate).
    pub ca_overlap_seconds: i64,
    pub judge: Option<JudgeConfig>,
}

/// `egress.ca_overlap_seconds` when unset: a week, long enough for every
/// agent to fetch the bundle again (a job's bundle is fetched when the job
/// starts; jobs live hours) and for an operator to notice one that did not.
pub const DEFAULT_CA_OVERLAP_SECONDS: i64 = 7 * 86_400;

pub(super) fn validate(raw: RawEgress) -> Result<EgressConfig, ConfigError> {
    let listen_text = raw.listen.unwrap_or_else(|| "127.0.0.1:8271".into());
    let listen = listen_text.parse().map_err(|_| {
        invalid(
            "egress.listen",
            format!("{listen_text:?} is not an address:port"),
        )
    })?;
    let allowed_ports = match raw.allowed_ports {
        None => DEFAULT_ALLOWED_PORTS.to_vec(),
        Some(list) => list
            .iter()
            .map(|v| {
                let n = match v {
                    toml::Value::Integer(n) => Some(*n),
                    toml::Value::String(s) => s.trim().parse().ok(),
                    _ => None,
                };
                n.and_then(|n| u16::try_from(n).ok())
                    .filter(|n| *n != 0)
                    .ok_or_else(|| {
                        invalid(
                            "egress.allowed_ports",
                            format!("{v} is not a port 1..65535"),
                        )
                    })
            })
            .collect::<Result<_, _>>()?,
    };
    let allow_private_cidrs = raw
        .allow_private_cidrs
        .unwrap_or_default()
        .iter()
        .map(|c| {
            Cidr::parse(c).map_err(|e| invalid("egress.allow_private_cidrs", format!("{c:?}: {e}")))
        })
        .collect::<Result<_, _>>()?;
    let mut static_hosts = BTreeMap::new();
    for (name, addr) in raw.static_hosts.unwrap_or_default() {
        let bad = |m: &str| invalid("egress.static_hosts", format!("{name:?}: {m}"));
        let host = match parse_target(&name, 443).map(|t| t.host().clone()) {
            Ok(Host::Name(n)) => n.as_str().to_string(),
            _ => return Err(bad("not a host name")),
        };
        let ip: IpAddr = addr
            .trim()
            .parse()
            .map_err(|_| bad("the address is not an IP address"))?;
        static_hosts.insert(host, ip);
    }
    let extra_root_certs = raw
        .extra_root_certs
        .unwrap_or_default()
        .into_iter()
        .map(PathBuf::from)
        .collect();
    let trust = match raw.trust {
        None => Trust::default(),
        Some(text) => Trust::parse(&text).map_err(|m| invalid("egress.trust", m))?,
    };
    let idle = raw.tunnel_idle_seconds.unwrap_or(300);
    if !(1..=86_400).contains(&idle) {
        return Err(invalid(
            "egress.tunnel_idle_seconds",
            format!("{idle} is outside 1..=86400"),
        ));
    }
    let max_connections = raw.max_connections_per_job.unwrap_or(256);
    if !(1..=1_000_000).contains(&max_connections) {
        return Err(invalid(
            "egress.max_connections_per_job",
            format!("{max_connections} is outside 1..=1000000"),
        ));
    }
    let ca_overlap_seconds = raw.ca_overlap_seconds.unwrap_or(DEFAULT_CA_OVERLAP_SECONDS);
    if !(60..=365 * 86_400).contains(&ca_overlap_seconds) {
        return Err(invalid(
            "egress.ca_overlap_seconds",
            format!("{ca_overlap_seconds} is outside 60..=31536000"),
        ));
    }
    let judge = match raw.judge.url {
        None => None,
        Some(url) => {
            if !(url.starts_with("http://") || url.starts_with("https://")) {
                return Err(invalid("egress.judge.url", "must be an http(s) URL"));
            }
            let ms = raw.judge.timeout_ms.unwrap_or(8000);
            if !(1..=60_000).contains(&ms) {
                return Err(invalid(
                    "egress.judge.timeout_ms",
                    format!("{ms} is outside 1..=60000"),
                ));
            }
            Some(JudgeConfig {
                url,
                timeout: Duration::from_millis(ms as u64),
            })
        }
    };
    Ok(EgressConfig {
        listen,
        allowed_ports,
        allow_private_cidrs,
        static_hosts,
        extra_root_certs,
        trust,
        platform_store: PlatformStore::default(),
        tunnel_idle: Duration::from_secs(idle as u64),
        max_connections_per_job: max_connections as usize,
        ca_overlap_seconds,
        judge,
    })
}

impl EgressConfig {
    /// Everything upstream TLS trusts (interception, relay, the outbound
    /// client alike).
    pub fn upstream_trust(&self) -> UpstreamTrust {
        UpstreamTrust {
            trust: self.trust,
            platform: self.platform_store.clone(),
            extra_root_certs: self.extra_root_certs.clone(),
        }
    }

    /// The address rule's operator exceptions, for the proxy and the
    /// outbound client alike.
    pub fn policy(&self) -> gatehouse_domain::egress::EgressPolicy {
        gatehouse_domain::egress::EgressPolicy {
            allow_private_cidrs: self.allow_private_cidrs.clone(),
            allowed_ports: self.allowed_ports.clone(),
        }
    }

    /// Name resolution for everything Gatehouse connects to:
    /// `egress.static_hosts` first, then the system resolver (every answer
    /// is still checked by the caller).
    pub fn resolver(&self) -> std::sync::Arc<gatehouse_egress::StaticHosts> {
        let static_hosts = self
            .static_hosts
            .iter()
            .map(|(name, ip)| (name.clone(), vec![*ip]))
            .collect();
        std::sync::Arc::new(gatehouse_egress::StaticHosts::new(
            static_hosts,
            std::sync::Arc::new(gatehouse_egress::SystemResolver),
        ))
    }

    pub(super) fn render(&self, placeholder_ttl_seconds: i64) -> String {
        let quoted = |items: Vec<String>| {
            items
                .iter()
                .map(|s| format!("{s:?}"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let ports: Vec<String> = self.allowed_ports.iter().map(u16::to_string).collect();
        let hosts: Vec<String> = self
            .static_hosts
            .iter()
            .map(|(k, v)| format!("{k:?} = {:?}", v.to_string()))
            .collect();
        let mut out = format!(
            "[egress]\nlisten = {:?}\nplaceholder_ttl_seconds = {placeholder_ttl_seconds}\n\
             allowed_ports = [{}]\nallow_private_cidrs = [{}]\nextra_root_certs = [{}]\n\
             trust = {:?}\n# platform trust store: {}\n\
             tunnel_idle_seconds = {}\nmax_connections_per_job = {}\nca_overlap_seconds = {}\n\n\
             [egress.static_hosts]\n{}",
            self.listen.to_string(),
            ports.join(", "),
            quoted(
                self.allow_private_cidrs
                    .iter()
                    .map(Cidr::to_string)
                    .collect()
            ),
            quoted(
                self.extra_root_certs
                    .iter()
                    .map(|p| p.display().to_string())
                    .collect()
            ),
            self.trust.as_str(),
            self.platform_store,
            self.tunnel_idle.as_secs(),
            self.max_connections_per_job,
            self.ca_overlap_seconds,
            hosts.iter().map(|h| format!("{h}\n")).collect::<String>(),
        );
        if let Some(j) = &self.judge {
            out.push_str(&format!(
                "\n[egress.judge]\nurl = {:?}\ntimeout_ms = {}\n",
                j.url,
                j.timeout.as_millis()
            ));
        }
        out
    }
}
