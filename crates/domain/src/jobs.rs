//! Job requests: which environment variables a job may receive and which
//! packages it may ask for. Both are caller text that ends up in a
//! program's environment or a Nix expression, so both are checked against
//! strict grammars here, and packages leave this module only through
//! [`render_packages`].

use std::fmt;

pub const MAX_GRANTS: usize = 20;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JobRuleError {
    EnvVarGrammar(String),
    EnvVarReserved(String),
    DuplicateEnvVar(String),
    TooManyGrants(usize),
    Package(String),
}

fn shown(s: &str) -> String {
    s.chars().take(64).collect()
}

impl fmt::Display for JobRuleError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::EnvVarGrammar(v) => write!(f, "env_var {:?} must match ^[A-Z_][A-Z0-9_]*$", shown(v)),
            Self::EnvVarReserved(v) => write!(
                f,
                "env_var {v:?} changes how programs load or run, or where their traffic goes, and cannot be granted"
            ),
            Self::DuplicateEnvVar(v) => write!(f, "env_var {v:?} is granted twice"),
            Self::TooManyGrants(n) => write!(f, "{n} grants: at most {MAX_GRANTS}"),
            Self::Package(p) => write!(
                f,
                "package {:?} must be a name matching ^[a-z0-9_][a-z0-9_-]*$ or <namespace>.<name> with a known namespace",
                shown(p)
            ),
        }
    }
}

/// Variables that make a process load other code, run other programs,
/// trust other certificates or send its traffic elsewhere.
const RESERVED: &[&str] = &[
    "PATH",
    "HOME",
    "SHELL",
    "ENV",
    "BASH_ENV",
    "IFS",
    "PS4",
    "CDPATH",
    "TMPDIR",
    "NODE_OPTIONS",
    "NODE_PATH",
    "NODE_EXTRA_CA_CERTS",
    "PYTHONPATH",
    "PYTHONHOME",
    "PYTHONSTARTUP",
    "PYTHONUSERBASE",
    "PYTHONINSPECT",
    "PERL5LIB",
    "PERL5OPT",
    "PERLLIB",
    "RUBYLIB",
    "RUBYOPT",
    "GEM_HOME",
    "GEM_PATH",
    "JAVA_TOOL_OPTIONS",
    "_JAVA_OPTIONS",
    "JDK_JAVA_OPTIONS",
    "CLASSPATH",
    "GCONV_PATH",
    "LOCPATH",
    "NLSPATH",
    "HOSTALIASES",
    "RESOLV_HOST_CONF",
    "GIT_SSH",
    "GIT_SSH_COMMAND",
    "GIT_EXEC_PATH",
    "GIT_CONFIG",
    "GIT_CONFIG_GLOBAL",
    "GIT_ASKPASS",
    "SSH_ASKPASS",
    "EDITOR",
    "VISUAL",
    "PAGER",
    "BROWSER",
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "ALL_PROXY",
    "NO_PROXY",
    "FTP_PROXY",
    "SSL_CERT_FILE",
    "SSL_CERT_DIR",
    "REQUESTS_CA_BUNDLE",
    "CURL_CA_BUNDLE",
    "GIT_SSL_CAINFO",
    "NIX_PATH",
    "NIX_CONF_DIR",
];

/// Prefixes of families of such variables.
const RESERVED_PREFIXES: &[&str] = &[
    "LD_",
    "DYLD_",
    "MALLOC_",
    "GLIBC_",
    "NIX_",
    "GIT_CONFIG_",
    "BASH_FUNC_",
];

/// The grammar of a grant's variable (at most 128 characters); reserved
/// names within it are refused separately.
pub const ENV_VAR_PATTERN: &str = "^[A-Z_][A-Z0-9_]{0,127}$";

/// `^[A-Z_][A-Z0-9_]*$` and not a loader/runtime/trust/proxy variable.
pub fn validate_env_var(name: &str) -> Result<(), JobRuleError> {
    let b = name.as_bytes();
    let grammar = !b.is_empty()
        && b.len() <= 128
        && (b[0].is_ascii_uppercase() || b[0] == b'_')
        && b.iter()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || *c == b'_');
    if !grammar {
        return Err(JobRuleError::EnvVarGrammar(name.to_string()));
    }
    if RESERVED.contains(&name) || RESERVED_PREFIXES.iter().any(|p| name.starts_with(p)) {
        return Err(JobRuleError::EnvVarReserved(name.to_string()));
    }
    Ok(())
}

/// Checks a job's grant variables as a whole: count, each name, no repeats.
pub fn validate_env_vars<'a>(names: impl IntoIterator<Item = &'a str>) -> Result<(), JobRuleError> {
    let names: Vec<&str> = names.into_iter().collect();
    if names.len() > MAX_GRANTS {
        return Err(JobRuleError::TooManyGrants(names.len()));
    }
    for (i, n) in names.iter().enumerate() {
        validate_env_var(n)?;
        if names[..i].contains(n) {
            return Err(JobRuleError::DuplicateEnvVar(n.to_string()));
        }
    }
    Ok(())
}

/// Nixpkgs package sets a job may name as `<namespace>.<leaf>`.
pub const PACKAGE_NAMESPACES: &[&str] = &[
    "python3Packages",
    "python311Packages",
    "python312Packages",
    "python313Packages",
    "nodePackages",
    "nodePackages_latest",
    "perlPackages",
    "haskellPackages",
    "rubyPackages",
    "luaPackages",
    "ocamlPackages",
    "rPackages",
    "texlivePackages",
    "vimPlugins",
    "emacsPackages",
    "goPackages",
    "rustPackages",
];

/// The grammar [`Package::parse`] checks, as a pattern: a leaf, or
/// `<known namespace>.<leaf>`.
pub fn package_pattern() -> String {
    format!(
        "^(?:(?:{})\\.)?[a-z0-9_][a-z0-9_-]{{0,99}}$",
        PACKAGE_NAMESPACES.join("|")
    )
}

/// A package name that passed [`Package::parse`]; only renderable through
/// [`render_packages`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Package(String);

fn is_leaf(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b.len() <= 100
        && (b[0].is_ascii_lowercase() || b[0].is_ascii_digit() || b[0] == b'_')
        && b.iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'_' || *c == b'-')
}

impl Package {
    /// A leaf `^[a-z0-9_][a-z0-9_-]*$`, or `<known namespace>.<leaf>`.
    pub fn parse(text: &str) -> Result<Self, JobRuleError> {
        let ok = match text.split_once('.') {
            None => is_leaf(text),
            Some((ns, leaf)) => PACKAGE_NAMESPACES.contains(&ns) && is_leaf(leaf),
        };
        if ok {
            Ok(Self(text.to_string()))
        } else {
            Err(JobRuleError::Package(text.to_string()))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The only way packages reach a Nix expression: attribute references
/// `pkgs.<name>` inside one list, never caller text as an expression.
pub fn render_packages(packages: &[Package]) -> String {
    let items: Vec<String> = packages.iter().map(|p| format!("pkgs.{}", p.0)).collect();
    format!("[ {} ]", items.join(" "))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn loader_runtime_trust_and_proxy_variables_are_refused() {
        for bad in [
            "PATH",
            "HOME",
            "LD_PRELOAD",
            "LD_LIBRARY_PATH",
            "LD_AUDIT",
            "NODE_OPTIONS",
            "NODE_PATH",
            "PYTHONPATH",
            "JAVA_TOOL_OPTIONS",
            "DYLD_INSERT_LIBRARIES",
            "DYLD_ANYTHING",
            "HTTPS_PROXY",
            "NO_PROXY",
            "BASH_ENV",
            "SSL_CERT_FILE",
            "GIT_SSH_COMMAND",
            "PERL5OPT",
        ] {
            assert_eq!(
                validate_env_var(bad),
                Err(JobRuleError::EnvVarReserved(bad.into())),
                "{bad}"
            );
        }
        for ok in [
            "GITHUB_TOKEN",
            "_X",
            "A1",
            "OPENAI_API_KEY",
            "DATABRICKS_TOKEN",
        ] {
            assert!(validate_env_var(ok).is_ok(), "{ok}");
        }
        for bad in ["", "lower", "1ABC", "A-B", "A B", "A=B", "É"] {
            assert!(
                matches!(validate_env_var(bad), Err(JobRuleError::EnvVarGrammar(_))),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn grants_are_counted_and_unique() {
        let many: Vec<String> = (0..21).map(|i| format!("V{i}")).collect();
        assert_eq!(
            validate_env_vars(many.iter().map(String::as_str)),
            Err(JobRuleError::TooManyGrants(21))
        );
        assert!(validate_env_vars(many[..20].iter().map(String::as_str)).is_ok());
        assert_eq!(
            validate_env_vars(["A", "B", "A"]),
            Err(JobRuleError::DuplicateEnvVar("A".into()))
        );
    }

    #[test]
    fn injection_attempts_are_refused_as_packages() {
        let long = "a".repeat(300);
        for bad in [
            "pkgs;builtins.exec \"x\"",
            "import ./evil.nix",
            "a && b",
            "${x}",
            "\"quoted\"",
            "'q'",
            "has space",
            "..",
            "a..b",
            "Upper",
            "",
            long.as_str(),
            "python3Packages.",
            "unknownNs.requests",
            "python3Packages.requests.extra",
            "-flag",
            "a/b",
            "(x)",
        ] {
            assert!(Package::parse(bad).is_err(), "{bad:?}");
        }
        for ok in [
            "jq",
            "ripgrep",
            "python3Packages.requests",
            "nodePackages.typescript",
            "_private",
            "0ad",
            "gcc-unwrapped",
        ] {
            assert!(Package::parse(ok).is_ok(), "{ok}");
        }
    }

    #[test]
    fn packages_render_only_as_attribute_references() {
        let p = ["jq", "python3Packages.requests"].map(|s| Package::parse(s).unwrap());
        assert_eq!(
            render_packages(&p),
            "[ pkgs.jq pkgs.python3Packages.requests ]"
        );
        assert_eq!(render_packages(&[]), "[  ]");
    }

    proptest! {
        #[test]
        fn accepted_packages_hold_only_grammar_characters(s in "\\PC{0,120}") {
            if let Ok(p) = Package::parse(&s) {
                prop_assert!(p.as_str().bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit()
                    || b == b'_' || b == b'-' || b == b'.' || b.is_ascii_uppercase()));
                let (ns, leaf) = p.as_str().split_once('.').unwrap_or(("", p.as_str()));
                prop_assert!(ns.is_empty() || PACKAGE_NAMESPACES.contains(&ns));
                prop_assert!(leaf.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-'));
            }
        }

        #[test]
        fn accepted_env_vars_match_the_grammar(s in "\\PC{0,40}") {
            if validate_env_var(&s).is_ok() {
                prop_assert!(s.bytes().all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_'));
                prop_assert!(!s.as_bytes()[0].is_ascii_digit());
            }
        }
    }
}
