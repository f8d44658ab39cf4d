//! Why a webhook delivery was refused.
//!
//! The reasons go to the audit log and the server log; the sender only ever
//! sees `401`. No variant can hold the secret: they carry header names,
//! fixed reason strings and clock skews, all of which the sender already
//! knows.

use thiserror::Error;

#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum WebhookError {
    #[error("missing header {0}")]
    MissingHeader(String),
    #[error("malformed header {header}: {reason}")]
    MalformedHeader {
        header: String,
        reason: &'static str,
    },
    /// Only the SHA-1 `X-Hub-Signature` was sent; SHA-1 HMACs are not
    /// accepted.
    #[error("only a SHA-1 signature was presented")]
    Sha1Only,
    #[error("signature does not match")]
    BadSignature,
    #[error("signed timestamp is {skew_secs} s in the past")]
    Stale { skew_secs: i64 },
    #[error("signed timestamp is {skew_secs} s in the future")]
    Future { skew_secs: i64 },
    #[error("delivery already seen")]
    Replayed,
    /// The hook's own configuration is unusable (empty secret, a Discord
    /// key that is not a valid Ed25519 point, a bad header name).
    #[error("webhook configuration is invalid: {0}")]
    InvalidConfig(&'static str),
}

impl WebhookError {
    /// A short stable code for the audit log.
    pub fn code(&self) -> &'static str {
        match self {
            Self::MissingHeader(_) => "missing_header",
            Self::MalformedHeader { .. } => "malformed_header",
            Self::Sha1Only => "sha1_only",
            Self::BadSignature => "bad_signature",
            Self::Stale { .. } => "stale",
            Self::Future { .. } => "future",
            Self::Replayed => "replayed",
            Self::InvalidConfig(_) => "invalid_config",
        }
    }

    pub(crate) fn malformed(header: &str, reason: &'static str) -> Self {
        Self::MalformedHeader {
            header: header.to_string(),
            reason,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_short_stable_snake_case() {
        let all = [
            WebhookError::MissingHeader("X".into()),
            WebhookError::malformed("X", "too long"),
            WebhookError::Sha1Only,
            WebhookError::BadSignature,
            WebhookError::Stale { skew_secs: 301 },
            WebhookError::Future { skew_secs: 301 },
            WebhookError::Replayed,
            WebhookError::InvalidConfig("empty secret"),
        ];
        let codes: Vec<_> = all.iter().map(WebhookError::code).collect();
        assert_eq!(
            codes,
            [
                "missing_header",
                "malformed_header",
                "sha1_only",
                "bad_signature",
                "stale",
                "future",
                "replayed",
                "invalid_config"
            ]
        );
    }
}
