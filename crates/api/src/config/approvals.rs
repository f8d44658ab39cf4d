//! `[approvals]`: how long a held request waits, which verbs beyond the
//! default list are gated, how many humans each needs, and where new
//! pending approvals are announced.

use std::collections::BTreeMap;

use serde::Deserialize;

use gatehouse_domain::approvals::GateRegistry;

use super::{invalid, ConfigError};

/// One hour, as SPEC §7 says.
pub const DEFAULT_TTL_SECONDS: i64 = 3600;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawApprovals {
    ttl_seconds: Option<i64>,
    gated_verbs: Option<Vec<String>>,
    required: Option<BTreeMap<String, i64>>,
    notify_url: Option<String>,
}

#[derive(Debug, Clone)]
pub struct ApprovalsConfig {
    pub ttl_seconds: i64,
    pub gates: GateRegistry,
    /// Posted (JSON, no secret values) on each new pending approval.
    pub notify_url: Option<reqwest::Url>,
    /// Extra verbs and per-verb counts as configured, for `--print-config`.
    gated_verbs: Vec<String>,
    required: BTreeMap<String, i64>,
}

impl Default for ApprovalsConfig {
    fn default() -> Self {
        Self {
            ttl_seconds: DEFAULT_TTL_SECONDS,
            gates: GateRegistry::default(),
            notify_url: None,
            gated_verbs: Vec::new(),
            required: BTreeMap::new(),
        }
    }
}

pub(super) fn validate(raw: RawApprovals) -> Result<ApprovalsConfig, ConfigError> {
    let ttl_seconds = raw.ttl_seconds.unwrap_or(DEFAULT_TTL_SECONDS);
    if !(60..=7 * 86_400).contains(&ttl_seconds) {
        return Err(invalid(
            "approvals.ttl_seconds",
            format!("{ttl_seconds} is outside 60..=604800"),
        ));
    }
    let gated_verbs = raw.gated_verbs.unwrap_or_default();
    let required = raw.required.unwrap_or_default();
    let gates = GateRegistry::from_config(&gated_verbs, &required)
        .map_err(|e| invalid("approvals", e.to_string()))?;
    let notify_url = match raw.notify_url {
        None => None,
        Some(text) if text.trim().is_empty() => None,
        Some(text) => {
            let url = reqwest::Url::parse(&text)
                .map_err(|e| invalid("approvals.notify_url", format!("is not a URL ({e})")))?;
            if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
                return Err(invalid(
                    "approvals.notify_url",
                    "must be an http:// or https:// URL with a host",
                ));
            }
            Some(url)
        }
    };
    Ok(ApprovalsConfig {
        ttl_seconds,
        gates,
        notify_url,
        gated_verbs,
        required,
    })
}

impl ApprovalsConfig {
    pub(super) fn render(&self) -> String {
        let verbs: Vec<String> = self.gated_verbs.iter().map(|v| format!("{v:?}")).collect();
        let required: Vec<String> = self
            .required
            .iter()
            .map(|(k, v)| format!("{k:?} = {v}"))
            .collect();
        format!(
            "[approvals]\nttl_seconds = {}\ngated_verbs = [{}]\nrequired = {{ {} }}\nnotify_url = {:?}\n",
            self.ttl_seconds,
            verbs.join(", "),
            required.join(", "),
            self.notify_url
                .as_ref()
                .map(|u| u.as_str().to_string())
                .unwrap_or_default(),
        )
    }
}
