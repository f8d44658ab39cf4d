//! An agent's secret ceiling (SPEC §4, §5): which secrets a job created
//! by a non-interactive credential may be granted, and when such a job
//! must wait for a human.
//!
//! A human session creates jobs with any secret of its owner; an `agent`
//! or `api` token only with secrets a human put in the ceiling of the
//! job's agent (empty unless a human set it), and a grant that hands the
//! job the plaintext (`value` mode) is held as `job.grant_values`.
//! Placeholder grants within the ceiling never let the value leave
//! Gatehouse, so they run at once.

use std::fmt;

use crate::principal::CredentialClass;

/// One grant as the rule sees it.
#[derive(Debug, Clone, Copy)]
pub struct GrantView<'a> {
    pub env_var: &'a str,
    pub secret: &'a str,
    /// The job would read the plaintext.
    pub by_value: bool,
}

/// What a job creation comes to under the ceiling.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GrantVerdict {
    /// Create the job now.
    Create,
    /// Hold the whole creation for a human (`job.grant_values`).
    Hold,
}

/// A grant outside the agent's ceiling, named by its environment
/// variable (never by a value).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotGrantable {
    pub env_var: String,
}

impl fmt::Display for NotGrantable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "grant {}: its secret is not in the agent's secret ceiling (a human sets it with PUT /v1/agents/{{name}}/secrets)",
            self.env_var
        )
    }
}

/// The one rule, for the request and again when an approved request runs.
pub fn check_grants<'a>(
    creator: CredentialClass,
    ceiling: &[String],
    grants: impl IntoIterator<Item = GrantView<'a>>,
) -> Result<GrantVerdict, NotGrantable> {
    if creator.is_interactive() {
        return Ok(GrantVerdict::Create);
    }
    let mut verdict = GrantVerdict::Create;
    for g in grants {
        if !ceiling.iter().any(|s| s == g.secret) {
            return Err(NotGrantable {
                env_var: g.env_var.to_string(),
            });
        }
        if g.by_value {
            verdict = GrantVerdict::Hold;
        }
    }
    Ok(verdict)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn g<'a>(env_var: &'a str, secret: &'a str, by_value: bool) -> GrantView<'a> {
        GrantView {
            env_var,
            secret,
            by_value,
        }
    }

    #[test]
    fn humans_grant_anything_of_their_owner_at_once() {
        let grants = [g("A", "ANY", true), g("B", "OTHER", false)];
        assert_eq!(
            check_grants(CredentialClass::Session, &[], grants),
            Ok(GrantVerdict::Create)
        );
    }

    #[test]
    fn non_interactive_creators_stay_within_the_ceiling() {
        let ceiling = vec!["GH".to_string()];
        for class in [
            CredentialClass::Agent,
            CredentialClass::Api,
            CredentialClass::Job,
        ] {
            assert_eq!(
                check_grants(class, &[], [g("GH_TOKEN", "GH", false)]),
                Err(NotGrantable {
                    env_var: "GH_TOKEN".into()
                }),
                "the default ceiling is empty"
            );
            assert_eq!(
                check_grants(class, &ceiling, [g("GH_TOKEN", "GH", false)]),
                Ok(GrantVerdict::Create)
            );
            assert_eq!(
                check_grants(
                    class,
                    &ceiling,
                    [g("GH_TOKEN", "GH", false), g("OTHER", "DB", false)]
                ),
                Err(NotGrantable {
                    env_var: "OTHER".into()
                })
            );
            assert_eq!(check_grants(class, &ceiling, []), Ok(GrantVerdict::Create));
        }
    }

    #[test]
    fn a_value_grant_within_the_ceiling_waits_for_a_human() {
        let ceiling = vec!["GH".to_string(), "DB".to_string()];
        assert_eq!(
            check_grants(
                CredentialClass::Agent,
                &ceiling,
                [g("A", "GH", false), g("B", "DB", true)]
            ),
            Ok(GrantVerdict::Hold)
        );
        // Outside the ceiling is refused, never held.
        assert!(check_grants(CredentialClass::Api, &ceiling, [g("C", "X", true)]).is_err());
    }

    #[test]
    fn the_refusal_names_the_env_var_only() {
        let e = NotGrantable {
            env_var: "GH_TOKEN".into(),
        };
        assert!(e.to_string().contains("GH_TOKEN"));
    }
}
