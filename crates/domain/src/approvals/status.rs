//! The life of an approval: `pending → approved → executed | failed`,
//! `pending → denied`, `pending → expired`.

use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ApprovalStatus {
    Pending,
    Approved,
    Executed,
    Failed,
    Denied,
    Expired,
}

impl ApprovalStatus {
    pub const ALL: [ApprovalStatus; 6] = [
        ApprovalStatus::Pending,
        ApprovalStatus::Approved,
        ApprovalStatus::Executed,
        ApprovalStatus::Failed,
        ApprovalStatus::Denied,
        ApprovalStatus::Expired,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ApprovalStatus::Pending => "pending",
            ApprovalStatus::Approved => "approved",
            ApprovalStatus::Executed => "executed",
            ApprovalStatus::Failed => "failed",
            ApprovalStatus::Denied => "denied",
            ApprovalStatus::Expired => "expired",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|v| v.as_str() == s)
    }

    /// Nothing can happen to it any more.
    pub fn is_final(self) -> bool {
        matches!(
            self,
            ApprovalStatus::Executed
                | ApprovalStatus::Failed
                | ApprovalStatus::Denied
                | ApprovalStatus::Expired
        )
    }
}

impl fmt::Display for ApprovalStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One human's answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    Approve,
    Deny,
}

impl Decision {
    pub fn as_str(self) -> &'static str {
        match self {
            Decision::Approve => "approve",
            Decision::Deny => "deny",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "approve" => Some(Decision::Approve),
            "deny" => Some(Decision::Deny),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_round_trip_and_only_pending_and_approved_are_open() {
        for s in ApprovalStatus::ALL {
            assert_eq!(ApprovalStatus::parse(s.as_str()), Some(s));
        }
        let open: Vec<_> = ApprovalStatus::ALL
            .into_iter()
            .filter(|s| !s.is_final())
            .collect();
        assert_eq!(open, [ApprovalStatus::Pending, ApprovalStatus::Approved]);
    }

    #[test]
    fn decisions_parse_exactly() {
        assert_eq!(Decision::parse("approve"), Some(Decision::Approve));
        assert_eq!(Decision::parse("deny"), Some(Decision::Deny));
        assert_eq!(Decision::parse("Approve"), None);
        assert_eq!(Decision::parse("yes"), None);
    }
}
