use super::*;

fn env(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[test]
fn defaults_follow_the_spec() {
    let c = Config::load(None, &BTreeMap::new()).unwrap();
    assert_eq!(c.listen.to_string(), "127.0.0.1:8270");
    assert_eq!(c.data_dir, PathBuf::from("./gatehouse-data"));
    assert!(c.database_url.is_none());
    assert_eq!(c.tokens.clock_skew, 30);
    assert!(!c.cookies_secure());
}

#[test]
fn unknown_file_keys_are_refused_by_name() {
    let err = Config::load(
        Some(("g.toml", "listen = \"127.0.0.1:1\"\nlisten_port = 5\n")),
        &BTreeMap::new(),
    )
    .unwrap_err();
    assert!(err.to_string().contains("listen_port"), "{err}");
    let err = Config::load(
        Some(("g.toml", "[tokens]\nclock_skew = 5\n")),
        &BTreeMap::new(),
    )
    .unwrap_err();
    assert!(err.to_string().contains("clock_skew"), "{err}");
}

#[test]
fn environment_overrides_the_file() {
    let file = "listen = \"127.0.0.1:1000\"\n[tokens]\nclock_skew_seconds = 10\n";
    let c = Config::load(
        Some(("g.toml", file)),
        &env(&[
            ("GATEHOUSE_LISTEN", "127.0.0.1:2000"),
            ("GATEHOUSE_TOKENS_CLOCK_SKEW_SECONDS", "60"),
            (
                "GATEHOUSE_IDENTITY_TRUSTED_PROXY_CIDRS",
                "10.0.0.0/8, 192.168.1.1",
            ),
            ("GATEHOUSE_IDENTITY_HEADER", "X-Forwarded-Email"),
        ]),
    )
    .unwrap();
    assert_eq!(c.listen.to_string(), "127.0.0.1:2000");
    assert_eq!(c.tokens.clock_skew, 60);
    assert_eq!(c.identity.trusted_proxy_cidrs.len(), 2);
    assert_eq!(c.identity.header.as_deref(), Some("x-forwarded-email"));
}

#[test]
fn out_of_range_values_are_refused_naming_the_key() {
    let cases = [
        (
            "GATEHOUSE_TOKENS_CLOCK_SKEW_SECONDS",
            "301",
            "clock_skew_seconds",
        ),
        (
            "GATEHOUSE_TOKENS_CLOCK_SKEW_SECONDS",
            "soon",
            "GATEHOUSE_TOKENS_CLOCK_SKEW_SECONDS",
        ),
        (
            "GATEHOUSE_TOKENS_AGENT_TTL_SECONDS",
            "86401",
            "agent_ttl_seconds",
        ),
        ("GATEHOUSE_LISTEN", "nowhere", "listen"),
        (
            "GATEHOUSE_IDENTITY_TRUSTED_PROXY_CIDRS",
            "10.0.0.0/99",
            "trusted_proxy_cidrs",
        ),
    ];
    for (var, value, named) in cases {
        let err = Config::load(None, &env(&[(var, value)])).unwrap_err();
        assert!(err.to_string().contains(named), "{var}={value}: {err}");
    }
}

#[test]
fn header_without_cidrs_is_refused() {
    let err = Config::load(None, &env(&[("GATEHOUSE_IDENTITY_HEADER", "X-Email")])).unwrap_err();
    assert!(err.to_string().contains("together"), "{err}");
}

#[test]
fn printed_config_masks_secrets() {
    let c = Config::load(
        None,
        &env(&[
            (
                "GATEHOUSE_MASTER_KEY",
                "c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0LXh4eHg=",
            ),
            (
                "GATEHOUSE_DATABASE_URL",
                "postgres://app:hunter2@db:5432/gh",
            ),
            ("GATEHOUSE_BOOTSTRAP_CODE", "ABCDE-FGHJK"),
        ]),
    )
    .unwrap();
    let shown = c.render_masked();
    assert!(!shown.contains("c2VjcmV0"), "{shown}");
    assert!(!shown.contains("hunter2"), "{shown}");
    assert!(!shown.contains("ABCDE"), "{shown}");
    assert!(
        shown.contains("postgres://app:********@db:5432/gh"),
        "{shown}"
    );
    assert!(format!("{c:?}").contains("********"));
    assert!(!format!("{c:?}").contains("hunter2"));
    // The rendering is itself valid configuration.
    assert!(toml::from_str::<toml::Table>(&shown).is_ok());
}

#[test]
fn egress_defaults_and_environment_lists_and_maps() {
    let c = Config::load(None, &BTreeMap::new()).unwrap();
    assert_eq!(c.egress.listen.to_string(), "127.0.0.1:8271");
    assert_eq!(c.egress.allowed_ports, vec![80, 443]);
    assert!(c.egress.judge.is_none());
    assert_eq!(c.egress.tunnel_idle.as_secs(), 300);
    assert_eq!(c.egress.max_connections_per_job, 256);
    let c = Config::load(
        None,
        &env(&[
            ("GATEHOUSE_EGRESS_LISTEN", "127.0.0.1:0"),
            ("GATEHOUSE_EGRESS_ALLOWED_PORTS", "443, 8443"),
            (
                "GATEHOUSE_EGRESS_ALLOW_PRIVATE_CIDRS",
                "127.0.0.0/8,10.1.0.0/16",
            ),
            (
                "GATEHOUSE_EGRESS_STATIC_HOSTS",
                "API.test.=127.0.0.2, b.test=::1",
            ),
            ("GATEHOUSE_EGRESS_EXTRA_ROOT_CERTS", "/tmp/a.pem"),
            ("GATEHOUSE_EGRESS_JUDGE_URL", "http://127.0.0.1:9/judge"),
            ("GATEHOUSE_EGRESS_JUDGE_TIMEOUT_MS", "250"),
            ("GATEHOUSE_EGRESS_TUNNEL_IDLE_SECONDS", "7"),
            ("GATEHOUSE_EGRESS_MAX_CONNECTIONS_PER_JOB", "3"),
        ]),
    )
    .unwrap();
    assert_eq!(c.egress.allowed_ports, vec![443, 8443]);
    assert_eq!(c.egress.allow_private_cidrs.len(), 2);
    assert_eq!(
        c.egress.static_hosts.get("api.test").unwrap().to_string(),
        "127.0.0.2"
    );
    assert_eq!(
        c.egress.static_hosts.get("b.test").unwrap().to_string(),
        "::1"
    );
    assert_eq!(c.egress.extra_root_certs, vec![PathBuf::from("/tmp/a.pem")]);
    let judge = c.egress.judge.as_ref().unwrap();
    assert_eq!(judge.timeout.as_millis(), 250);
    assert_eq!(c.egress.tunnel_idle.as_secs(), 7);
    assert_eq!(c.egress.max_connections_per_job, 3);
    let printed = c.render_masked();
    assert!(printed.contains("[egress.judge]"), "{printed}");
    assert!(
        printed.contains("\"api.test\" = \"127.0.0.2\""),
        "{printed}"
    );
    let again: toml::Table = toml::from_str(&printed).unwrap();
    assert!(again.contains_key("egress"));
}

#[test]
fn egress_typos_and_sloppy_exceptions_are_refused() {
    for (var, value) in [
        ("GATEHOUSE_EGRESS_ALLOWED_PORTS", "0"),
        ("GATEHOUSE_EGRESS_ALLOWED_PORTS", "70000"),
        ("GATEHOUSE_EGRESS_ALLOW_PRIVATE_CIDRS", "10.1.2.3/8"),
        ("GATEHOUSE_EGRESS_STATIC_HOSTS", "api.test"),
        ("GATEHOUSE_EGRESS_STATIC_HOSTS", "api.test=not-an-ip"),
        ("GATEHOUSE_EGRESS_STATIC_HOSTS", "127.0.0.1=127.0.0.1"),
        ("GATEHOUSE_EGRESS_JUDGE_URL", "ftp://judge"),
        ("GATEHOUSE_EGRESS_LISTEN", "nowhere"),
        ("GATEHOUSE_EGRESS_TUNNEL_IDLE_SECONDS", "0"),
        ("GATEHOUSE_EGRESS_MAX_CONNECTIONS_PER_JOB", "0"),
        ("GATEHOUSE_EGRESS_MAX_CONNECTIONS_PER_JOB", "many"),
    ] {
        assert!(
            Config::load(None, &env(&[(var, value)])).is_err(),
            "{var}={value}"
        );
    }
    let err = Config::load(
        Some((
            "g.toml",
            "[egress.judge]\nurl = \"http://j\"\ntimeout = 5\n",
        )),
        &BTreeMap::new(),
    )
    .unwrap_err();
    assert!(err.to_string().contains("timeout"), "{err}");
}

#[test]
fn egress_trust_defaults_to_the_platform_store_and_is_printed() {
    let c = Config::load(None, &BTreeMap::new()).unwrap();
    assert_eq!(c.egress.trust, gatehouse_egress::trust::Trust::Platform);
    assert_eq!(
        c.egress.platform_store,
        gatehouse_egress::trust::PlatformStore::default()
    );
    let printed = c.render_masked();
    assert!(printed.contains("trust = \"platform\""), "{printed}");
    assert!(
        printed.contains("# platform trust store: the system's trust store"),
        "{printed}"
    );
}

#[test]
fn egress_trust_comes_from_file_or_environment_and_the_store_from_ssl_cert_file() {
    let c = Config::load(
        Some(("g.toml", "[egress]\ntrust = \"webpki\"\n")),
        &env(&[
            ("SSL_CERT_FILE", "/corp/bundle.pem"),
            ("SSL_CERT_DIR", "/corp/certs"),
        ]),
    )
    .unwrap();
    assert_eq!(c.egress.trust, gatehouse_egress::trust::Trust::Webpki);
    let trust = c.egress.upstream_trust();
    assert_eq!(
        trust.platform.cert_file,
        Some(PathBuf::from("/corp/bundle.pem"))
    );
    assert_eq!(trust.platform.cert_dirs, vec![PathBuf::from("/corp/certs")]);
    let printed = c.render_masked();
    assert!(printed.contains("trust = \"webpki\""), "{printed}");
    assert!(
        printed.contains("SSL_CERT_FILE=/corp/bundle.pem, SSL_CERT_DIR=/corp/certs"),
        "{printed}"
    );
    let c = Config::load(None, &env(&[("GATEHOUSE_EGRESS_TRUST", "both")])).unwrap();
    assert_eq!(c.egress.trust, gatehouse_egress::trust::Trust::Both);
}

#[test]
fn a_bad_egress_trust_is_an_error_naming_the_key_and_the_choices() {
    let e = Config::load(None, &env(&[("GATEHOUSE_EGRESS_TRUST", "system")])).unwrap_err();
    let text = e.to_string();
    assert!(
        text.contains("egress.trust")
            && text.contains("\"system\"")
            && text.contains("platform, webpki, both"),
        "{text}"
    );
}

#[test]
fn database_pool_keys_have_defaults_and_come_from_file_or_environment() {
    let c = Config::load(None, &BTreeMap::new()).unwrap();
    assert_eq!(c.database.max_connections, 8);
    assert_eq!(
        c.database.statement_timeout,
        std::time::Duration::from_millis(10_000)
    );
    assert_eq!(c.egress.ca_overlap_seconds, 7 * 86_400);
    let file = "[database]\nmax_connections = 12\nstatement_timeout_ms = 3000\n\
                [egress]\nca_overlap_seconds = 3600\n";
    let c = Config::load(Some(("g.toml", file)), &BTreeMap::new()).unwrap();
    assert_eq!(c.database.max_connections, 12);
    assert_eq!(
        c.database.statement_timeout,
        std::time::Duration::from_millis(3000)
    );
    assert_eq!(c.egress.ca_overlap_seconds, 3600);
    let c = Config::load(
        Some(("g.toml", file)),
        &env(&[
            ("GATEHOUSE_DATABASE_MAX_CONNECTIONS", "20"),
            ("GATEHOUSE_DATABASE_STATEMENT_TIMEOUT_MS", "500"),
            ("GATEHOUSE_EGRESS_CA_OVERLAP_SECONDS", "120"),
        ]),
    )
    .unwrap();
    assert_eq!(c.database.max_connections, 20);
    assert_eq!(
        c.database.statement_timeout,
        std::time::Duration::from_millis(500)
    );
    assert_eq!(c.egress.ca_overlap_seconds, 120);
    let shown = c.render_masked();
    assert!(
        shown.contains("[database]\nmax_connections = 20\nstatement_timeout_ms = 500\n"),
        "{shown}"
    );
    assert!(shown.contains("ca_overlap_seconds = 120"), "{shown}");
    // What --print-config shows is TOML with the same values.
    let again: toml::Table = toml::from_str(&shown).unwrap();
    assert_eq!(again["database"]["max_connections"].as_integer(), Some(20));
    assert_eq!(
        again["egress"]["ca_overlap_seconds"].as_integer(),
        Some(120)
    );
}

#[test]
fn bad_database_and_ca_values_are_refused_naming_the_key() {
    for (var, value, key) in [
        (
            "GATEHOUSE_DATABASE_MAX_CONNECTIONS",
            "0",
            "database.max_connections",
        ),
        (
            "GATEHOUSE_DATABASE_MAX_CONNECTIONS",
            "100000",
            "database.max_connections",
        ),
        (
            "GATEHOUSE_DATABASE_STATEMENT_TIMEOUT_MS",
            "99",
            "database.statement_timeout_ms",
        ),
        (
            "GATEHOUSE_DATABASE_STATEMENT_TIMEOUT_MS",
            "600001",
            "database.statement_timeout_ms",
        ),
        (
            "GATEHOUSE_DATABASE_STATEMENT_TIMEOUT_MS",
            "soon",
            "GATEHOUSE_DATABASE_STATEMENT_TIMEOUT_MS",
        ),
        (
            "GATEHOUSE_EGRESS_CA_OVERLAP_SECONDS",
            "59",
            "egress.ca_overlap_seconds",
        ),
    ] {
        let err = Config::load(None, &env(&[(var, value)])).unwrap_err();
        assert!(err.to_string().contains(key), "{var}={value}: {err}");
    }
    let err =
        Config::load(Some(("g.toml", "[database]\npool = 5\n")), &BTreeMap::new()).unwrap_err();
    assert!(err.to_string().contains("pool"), "{err}");
}
