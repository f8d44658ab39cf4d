//! Upstream credentials end to end (SPEC §8) against a fake Databricks
//! token API over real HTTP, on SQLite and PostgreSQL. Time is the test's
//! manual clock, shared by Gatehouse and the fake; the rotation is driven
//! by calling its tick, so no test sleeps through an interval.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "support/upstream.rs"]
mod fake_upstream;
mod support;

use std::sync::Arc;
use std::time::Instant;

use fake_upstream::FakeUpstream;
use gatehouse_api::upstream::rotation::tick;
use gatehouse_domain::clock::{ManualClock, SystemClock};
use gatehouse_domain::Clock;
use reqwest::Method;
use serde_json::{json, Value};
use support::{server_with_clock, Engine, TestServer};

const ALICE: &str = "alice@x.org";

struct World {
    s: TestServer,
    fake: FakeUpstream,
    op: String,
    alice: String,
    /// An api token of alice: reads status without counting as activity.
    alice_api: String,
}

fn databricks(fake: &FakeUpstream, idle: &str) -> String {
    // The owner is written in another case on purpose: compared
    // case-insensitively.
    format!(
        "[[upstream]]\nname = \"dbx\"\nowner = \"Alice@X.org\"\ndriver = \"databricks\"\n\
         base_url = \"{}/\"\nidle = \"{idle}\"\n",
        fake.url
    )
}

fn generic(fake: &FakeUpstream) -> String {
    format!(
        r#"[[upstream]]
name = "gen"
owner = "alice@x.org"
driver = "generic"
base_url = "{}"
rotate_every_seconds = 300
lifetime_seconds = 450
[upstream.generic]
mint = {{ method = "POST", path = "/api/2.0/token/create", body = '{{"lifetime_seconds": {{lifetime_seconds}}, "comment": "gatehouse generic"}}' }}
revoke = {{ method = "POST", path = "/api/2.0/token/delete", body = '{{"token_id": "{{token_id}}"}}' }}
whoami = {{ method = "GET", path = "/api/2.0/preview/scim/v2/Me" }}
token_pointer = "/token_value"
token_id_pointer = "/token_info/token_id"
expires_at_pointer = "/token_info/expiry_time"
identity_pointer = "/userName"
whoami_token_id_pointer = "/x_token_id"
"#,
        fake.url
    )
}

async fn world_with(engine: Engine, config: impl Fn(&FakeUpstream) -> String) -> World {
    let clock = ManualClock::new(SystemClock.now());
    let fake = FakeUpstream::start(Arc::new(clock.clone())).await;
    // The fake upstream lives on loopback: the operator lets it through,
    // as they would an internal upstream (SPEC §12).
    let s = server_with_clock(
        engine,
        &[("GATEHOUSE_EGRESS_ALLOW_PRIVATE_CIDRS", "127.0.0.0/8")],
        Some(&config(&fake)),
        clock,
    )
    .await;
    let op = s.claim("op@x.org").await;
    let alice = s.owner(&op, ALICE).await;
    let (code, api) = s
        .json(
            Method::POST,
            "/v1/tokens",
            Some(&alice),
            Some(json!({"class": "api", "subject": "status-reader", "scope": ""})),
        )
        .await;
    assert_eq!(code, 201, "{api}");
    let alice_api = api["token"].as_str().unwrap().to_string();
    World {
        s,
        fake,
        op,
        alice,
        alice_api,
    }
}

async fn world(engine: Engine, idle: &str) -> World {
    world_with(engine, |f| databricks(f, idle)).await
}

impl World {
    /// An api token of alice's that may ask to revoke her upstream
    /// credential (`secrets:write`): held for a human.
    async fn alice_secrets_api(&self) -> String {
        let (code, api) = self
            .s
            .json(
                Method::POST,
                "/v1/tokens",
                Some(&self.alice),
                Some(json!({"class": "api", "subject": "ops", "scope": "secrets:write"})),
            )
            .await;
        assert_eq!(code, 201, "{api}");
        api["token"].as_str().unwrap().to_string()
    }

    async fn put_credential(&self, who: &str, name: &str, token: &str) -> (u16, Value) {
        self.s
            .json(
                Method::PUT,
                &format!("/v1/upstreams/{name}/credential"),
                Some(who),
                Some(json!({ "token": token })),
            )
            .await
    }

    async fn status(&self, name: &str) -> Value {
        let (code, body) = self
            .s
            .json(
                Method::GET,
                &format!("/v1/upstreams/{name}/status"),
                Some(&self.alice_api),
                None,
            )
            .await;
        assert_eq!(code, 200, "{body}");
        body
    }

    async fn bootstrap(&self) -> fake_upstream::FakeToken {
        let pat = self.fake.seed_pat(ALICE);
        let (code, body) = self.put_credential(&self.alice, "dbx", &pat.value).await;
        assert_eq!(code, 200, "{body}");
        pat
    }

    async fn tick(&self) {
        tick(self.s.state()).await;
    }

    /// Moves the shared clock and lets the rotation look.
    async fn advance(&self, seconds: i64) {
        self.s.clock.advance(seconds);
        self.tick().await;
    }

    /// What a job granted `upstream.<name>` by value receives.
    async fn agent_value(&self, name: &str) -> String {
        let _ = self
            .s
            .json(
                Method::POST,
                "/v1/agents",
                Some(&self.alice),
                Some(json!({"name": "bot"})),
            )
            .await;
        let grant = json!({"agent": "bot", "ttl_seconds": 60,
            "grants": [{"env_var": "DATABRICKS_TOKEN", "secret": format!("upstream.{name}"), "mode": "value"}]});
        let (code, job) = self
            .s
            .json(Method::POST, "/v1/jobs", Some(&self.alice), Some(grant))
            .await;
        assert_eq!(code, 201, "{job}");
        let (code, creds) = self
            .s
            .json(
                Method::GET,
                "/v1/job/credentials",
                job["job_token"].as_str(),
                None,
            )
            .await;
        assert_eq!(code, 200, "{creds}");
        // Done with it: a live job would count as activity.
        let id = job["job_id"].as_str().unwrap();
        let (code, _) = self
            .s
            .json(
                Method::DELETE,
                &format!("/v1/jobs/{id}"),
                Some(&self.alice),
                None,
            )
            .await;
        assert_eq!(code, 204);
        creds[0]["value"].as_str().unwrap().to_string()
    }

    /// Revokes alice's session: she has no job and no session left.
    async fn alice_goes_idle(&self) {
        let (_, me) = self
            .s
            .json(Method::GET, "/v1/auth/whoami", Some(&self.alice), None)
            .await;
        let (code, body) = self
            .s
            .json(
                Method::POST,
                "/v1/tokens/revoke",
                Some(&self.op),
                Some(json!({"jti": me["jti"]})),
            )
            .await;
        assert_eq!(code, 200, "{body}");
    }

    async fn audit_text(&self) -> String {
        let (code, body) = self
            .s
            .json(Method::GET, "/v1/audit?limit=1000", Some(&self.op), None)
            .await;
        assert_eq!(code, 200, "{body}");
        body.to_string()
    }
}

async fn bootstrap_exchanges_the_pasted_token_for_a_minted_one_and_revokes_it(engine: Engine) {
    let w = world(engine, "expire").await;
    let pat = w.fake.seed_pat(ALICE);
    let started = Instant::now();
    let (code, body) = w.put_credential(&w.alice, "dbx", &pat.value).await;
    let took = started.elapsed();
    assert_eq!(code, 200, "{body}");
    eprintln!("measure: paste to first usable short-lived token: {took:?} ({engine:?})");
    assert_eq!(body["configured"], true);
    assert_eq!(body["valid"], true);
    assert!(body["last_rotation"].is_string());

    // The pasted token is revoked; exactly one minted token lives, and it
    // is the one agents get; they never see the pasted one.
    assert!(w.fake.token(&pat.id).deleted_at.is_some());
    let live = w.fake.live_minted();
    assert_eq!(live.len(), 1);
    assert_eq!(body["token_id"], live[0].id.as_str());
    assert_eq!(live[0].expires_at, Some(w.s.clock.now() + 900));
    let value = w.agent_value("dbx").await;
    assert_eq!(value, live[0].value);
    assert_ne!(value, pat.value);

    // The secret is bound to the upstream's host only.
    let (_, secrets) =
        w.s.json(Method::GET, "/v1/secrets", Some(&w.alice), None)
            .await;
    let secret = secrets
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == "upstream.dbx")
        .unwrap();
    assert_eq!(secret["allowed_hosts"], json!(["127.0.0.1"]));
    assert_eq!(w.status("dbx").await["pending_revokes"], json!([]));

    let audit = w.audit_text().await;
    for action in ["upstream.bootstrap", "upstream.mint", "upstream.revoke"] {
        assert!(audit.contains(action), "{action} missing from audit");
    }
    assert!(
        audit.contains(&pat.id) && audit.contains(&live[0].id),
        "token ids audited"
    );
    assert!(
        !audit.contains(&pat.value) && !audit.contains(&live[0].value),
        "no token value in audit"
    );
}

async fn bootstrap_refuses_empty_foreign_and_mismatched_tokens(engine: Engine) {
    let w = world(engine, "expire").await;
    let bob = w.s.owner(&w.op, "bob@x.org").await;
    let bobs_pat = w.fake.seed_pat("bob@x.org");
    for empty in ["", "   "] {
        let (code, body) = w.put_credential(&w.alice, "dbx", empty).await;
        assert_eq!(
            (code, body["error"]["code"].as_str()),
            (400, Some("invalid_token")),
            "{body}"
        );
    }
    let (code, body) =
        w.s.json(
            Method::PUT,
            "/v1/upstreams/dbx/credential",
            Some(&w.alice),
            Some(json!({})),
        )
        .await;
    assert_eq!(code, 400, "{body}");
    // Any signed-in user is not enough: only the upstream's owner.
    let (code, body) = w.put_credential(&bob, "dbx", &bobs_pat.value).await;
    assert_eq!(
        (code, body["error"]["code"].as_str()),
        (403, Some("not_upstream_owner")),
        "{body}"
    );
    // The owner pasting someone else's token.
    let (code, body) = w.put_credential(&w.alice, "dbx", &bobs_pat.value).await;
    assert_eq!(
        (code, body["error"]["code"].as_str()),
        (403, Some("identity_mismatch")),
        "{body}"
    );
    let (code, _) = w.put_credential(&w.alice, "nope", &bobs_pat.value).await;
    assert_eq!(code, 404);
    // Nothing was minted, bob's token is untouched, status is unconfigured.
    assert_eq!(w.fake.calls_to("/token/create"), 0);
    assert!(w.fake.token(&bobs_pat.id).deleted_at.is_none());
    let status = w.status("dbx").await;
    assert_eq!(
        (status["configured"].clone(), status["valid"].clone()),
        (json!(false), json!(false))
    );
    // Status is the owner's alone.
    let (code, _) =
        w.s.json(Method::GET, "/v1/upstreams/dbx/status", Some(&bob), None)
            .await;
    assert_eq!(code, 403);
    let (_, listed) =
        w.s.json(Method::GET, "/v1/upstreams", Some(&bob), None)
            .await;
    assert_eq!(listed, json!([]));

    let audit = w.audit_text().await;
    for reason in [
        "refused: empty or malformed token",
        "refused: not the upstream's owner",
        "refused: identity_mismatch",
    ] {
        assert!(audit.contains(reason), "{reason} missing from audit");
    }
    assert!(!audit.contains(&bobs_pat.value));
}

async fn a_second_paste_while_active_is_409_and_never_reaches_the_upstream(engine: Engine) {
    let w = world(engine, "expire").await;
    let bob = w.s.owner(&w.op, "bob@x.org").await;
    // The owner check comes first: someone else is 403 even with an empty body.
    let (code, body) = w.put_credential(&bob, "dbx", "").await;
    assert_eq!(
        (code, body["error"]["code"].as_str()),
        (403, Some("not_upstream_owner")),
        "{body}"
    );
    w.bootstrap().await;
    let before = w.fake.calls().len();
    // While a credential is active, no paste is looked at, let alone sent
    // to the upstream: a good one, a bad one, an empty one.
    let second = w.fake.seed_pat(ALICE);
    for pasted in [second.value.as_str(), "dapi-not-a-real-token", "", "  "] {
        let (code, body) = w.put_credential(&w.alice, "dbx", pasted).await;
        assert_eq!(code, 409, "{body}");
    }
    assert_eq!(
        w.fake.calls().len(),
        before,
        "{:?}",
        &w.fake.calls()[before..]
    );
    assert!(w.fake.token(&second.id).deleted_at.is_none());
    assert!(w
        .audit_text()
        .await
        .contains("refused: a credential is active"));

    // Once expired (no rotation: nobody ticked), the owner may again.
    w.s.clock.advance(901);
    let status = w.status("dbx").await;
    assert_eq!(status["valid"], false);
    let calls_before_status = w.fake.calls().len();
    let _ = w.status("dbx").await;
    assert_eq!(
        w.fake.calls().len(),
        calls_before_status,
        "status asks the store, not the upstream"
    );
    let (code, body) = w.put_credential(&w.alice, "dbx", &second.value).await;
    assert_eq!(code, 200, "{body}");
    assert_eq!(body["valid"], true);
    assert!(w.fake.token(&second.id).deleted_at.is_some());
}

async fn rotation_overlaps_at_most_two_tokens_and_idle_mints_nothing(engine: Engine) {
    let w = world(engine, "expire").await;
    w.bootstrap().await;
    let after_bootstrap = w.fake.calls().len();
    let first = w.status("dbx").await["token_id"].clone();

    // One simulated hour, active (alice holds a session), a tick a minute.
    for _ in 0..60 {
        w.advance(60).await;
        assert_eq!(
            w.fake.live_minted().len(),
            1,
            "the old token is revoked after each switch"
        );
    }
    assert!(
        w.fake.max_live_minted() <= 2,
        "overlap {}",
        w.fake.max_live_minted()
    );
    let active_calls = w.fake.calls().len() - after_bootstrap;
    assert_eq!(
        w.fake.calls_to("/token/create") - 1,
        6,
        "one mint per 10 minutes"
    );
    eprintln!("measure: upstream calls per hour, active (idle=expire): {active_calls}");
    assert_eq!(active_calls, 18, "mint, verify, revoke per rotation");
    let status = w.status("dbx").await;
    assert_ne!(status["token_id"], first);
    assert_eq!(w.agent_value("dbx").await, w.fake.live_minted()[0].value);

    // Idle: ten simulated minutes with no job and no session mint nothing.
    w.alice_goes_idle().await;
    let before_idle = w.fake.calls().len();
    for _ in 0..10 {
        w.advance(60).await;
    }
    assert_eq!(
        w.fake.calls().len(),
        before_idle,
        "idle=expire makes no upstream call"
    );
    eprintln!("measure: upstream calls per hour, idle (idle=expire): 0");
    // The token lapses at its expiry, known without asking the upstream.
    w.advance(900).await;
    assert_eq!(w.status("dbx").await["valid"], false);
    assert_eq!(w.fake.calls().len(), before_idle);
    assert!(w.fake.live_minted().is_empty());

    // Back (recovered by the operator, signed in with the new code), the
    // owner bootstraps again.
    let (code, recovered) =
        w.s.json(
            Method::POST,
            &format!("/v1/owners/{ALICE}/recover"),
            Some(&w.op),
            None,
        )
        .await;
    assert_eq!(code, 200, "{recovered}");
    let (code, body) =
        w.s.json(
            Method::POST,
            "/v1/login",
            None,
            Some(json!({"email": ALICE, "code": recovered["login_code"]})),
        )
        .await;
    assert_eq!(code, 200, "{body}");
    let alice = body["token"].as_str().unwrap().to_string();
    let pat = w.fake.seed_pat(ALICE);
    let (code, body) = w.put_credential(&alice, "dbx", &pat.value).await;
    assert_eq!(code, 200, "{body}");
    assert_eq!(w.fake.live_minted().len(), 1);
}

async fn keep_alive_rotates_while_idle(engine: Engine) {
    let w = world(engine, "keep_alive").await;
    w.bootstrap().await;
    w.alice_goes_idle().await;
    let before = w.fake.calls().len();
    for _ in 0..60 {
        w.advance(60).await;
    }
    let idle_calls = w.fake.calls().len() - before;
    eprintln!("measure: upstream calls per hour, idle (idle=keep_alive): {idle_calls}");
    assert_eq!(idle_calls, 18);
    assert_eq!(w.fake.live_minted().len(), 1);
    assert!(w.fake.max_live_minted() <= 2);
    assert_eq!(w.status("dbx").await["valid"], true);
}

async fn a_failed_revoke_is_retried_with_backoff_and_the_new_token_kept(engine: Engine) {
    let w = world(engine, "expire").await;
    w.bootstrap().await;
    let old = w.status("dbx").await["token_id"]
        .as_str()
        .unwrap()
        .to_string();
    w.fake.fail_deletes(true);
    w.advance(600).await;
    let status = w.status("dbx").await;
    let new = status["token_id"].as_str().unwrap().to_string();
    assert_ne!(new, old, "switched despite the failed revoke");
    let pending = status["pending_revokes"].as_array().unwrap();
    assert_eq!(pending.len(), 1, "{status}");
    assert_eq!(pending[0]["token_id"], old.as_str());
    assert_eq!(pending[0]["attempts"], 1);
    assert!(pending[0]["last_error"].as_str().unwrap().contains("503"));
    assert_eq!(w.agent_value("dbx").await, w.fake.token(&new).value);

    // Not before the backoff has passed.
    let deletes = w.fake.calls_to("/token/delete");
    w.advance(2).await;
    assert_eq!(w.fake.calls_to("/token/delete"), deletes);
    w.advance(4).await;
    assert_eq!(w.fake.calls_to("/token/delete"), deletes + 1);
    assert_eq!(w.status("dbx").await["pending_revokes"][0]["attempts"], 2);

    w.fake.fail_deletes(false);
    w.advance(10).await;
    assert!(w.fake.token(&old).deleted_at.is_some());
    let status = w.status("dbx").await;
    assert_eq!(status["pending_revokes"], json!([]));
    assert_eq!(status["token_id"], new.as_str());
    assert!(w
        .audit_text()
        .await
        .contains("failed: unexpected upstream answer: status 503"));
}

async fn an_upstream_outage_backs_off_and_the_current_token_stays(engine: Engine) {
    let w = world(engine, "expire").await;
    w.bootstrap().await;
    let current = w.status("dbx").await["token_id"].clone();
    w.fake.fail_creates(true);
    w.advance(600).await;
    assert_eq!(
        w.fake.calls_to("/token/create"),
        2,
        "bootstrap's and one failed"
    );
    // Ticks a second apart do not hammer the upstream (or the audit log).
    for _ in 0..4 {
        w.advance(1).await;
    }
    assert_eq!(w.fake.calls_to("/token/create"), 2);
    w.advance(1).await;
    assert_eq!(w.fake.calls_to("/token/create"), 3, "retried after 5 s");
    let status = w.status("dbx").await;
    assert_eq!(
        (status["token_id"].clone(), status["valid"].clone()),
        (current, json!(true))
    );
    w.fake.fail_creates(false);
    w.advance(10).await;
    assert_ne!(w.status("dbx").await["token_id"], status["token_id"]);
    let audit = w.audit_text().await;
    assert_eq!(
        audit
            .matches("failed: unexpected upstream answer: status 503")
            .count(),
        2
    );
}

async fn an_unidentifiable_pasted_token_is_left_alone_and_said_so(engine: Engine) {
    let w = world(engine, "expire").await;
    // Two of alice's tokens: Databricks cannot say which one was pasted.
    let other = w.fake.seed_pat(ALICE);
    let pat = w.bootstrap().await;
    assert!(w.fake.token(&pat.id).deleted_at.is_none());
    assert!(w.fake.token(&other.id).deleted_at.is_none(), "no guessing");
    assert!(w
        .audit_text()
        .await
        .contains("could not be determined, it was not revoked"));
}

async fn only_a_human_session_of_the_owner_may_bootstrap(engine: Engine) {
    let w = world(engine, "expire").await;
    let pat = w.fake.seed_pat(ALICE);
    let (code, body) = w.put_credential(&w.alice_api, "dbx", &pat.value).await;
    assert_eq!(
        (code, body["error"]["code"].as_str()),
        (403, Some("human_session_required")),
        "{body}"
    );
    assert!(w.fake.calls().is_empty());
    // Refused by the route's rule, before the handler: audited as such.
    let audit = w.audit_text().await;
    assert!(
        audit.contains("denied:human_session_required")
            && audit.contains("PUT /v1/upstreams/{name}/credential"),
        "{audit}"
    );
}

async fn the_generic_driver_is_described_in_config(engine: Engine) {
    let w = world_with(engine, generic).await;
    let pat = w.fake.seed_pat(ALICE);
    let (code, body) = w.put_credential(&w.alice, "gen", &pat.value).await;
    assert_eq!(code, 200, "{body}");
    assert!(
        w.fake.token(&pat.id).deleted_at.is_some(),
        "pasted token found by whoami and revoked"
    );
    let first = body["token_id"].as_str().unwrap().to_string();
    assert_eq!(w.fake.token(&first).expires_at, Some(w.s.clock.now() + 450));
    w.advance(300).await;
    let second = w.status("gen").await["token_id"]
        .as_str()
        .unwrap()
        .to_string();
    assert_ne!(first, second);
    assert!(w.fake.token(&first).deleted_at.is_some());
    assert_eq!(w.agent_value("gen").await, w.fake.token(&second).value);
}

async fn upstream_secret_names_are_reserved(engine: Engine) {
    let w = world(engine, "expire").await;
    let (code, body) = w.s.put_secret(&w.alice, "upstream.dbx", "mine").await;
    assert_eq!(
        (code, body["error"]["code"].as_str()),
        (403, Some("reserved_name")),
        "{body}"
    );
    w.bootstrap().await;
    let served = w.agent_value("dbx").await;
    let (code, body) = w.s.put_secret(&w.alice, "upstream.dbx", "mine").await;
    assert_eq!(code, 403, "{body}");
    let (code, _) =
        w.s.json(
            Method::DELETE,
            "/v1/secrets/upstream.dbx",
            Some(&w.alice),
            None,
        )
        .await;
    assert_eq!(code, 403);
    // Neither refusal touched it: still stored, still served, and it is
    // the token the upstream minted.
    let (_, names) =
        w.s.json(Method::GET, "/v1/secrets", Some(&w.alice), None)
            .await;
    assert!(names.to_string().contains("upstream.dbx"), "{names}");
    assert_eq!(w.agent_value("dbx").await, served);
    assert_ne!(served, "mine");
    assert!(w.fake.by_value(&served).is_some());
}

async fn the_owner_takes_back_the_credential_through_the_gate(engine: Engine) {
    let w = world(engine, "expire").await;
    let path = "/v1/upstreams/dbx/credential";
    // Nothing to take back yet.
    let (code, body) = w.s.json(Method::DELETE, path, Some(&w.alice), None).await;
    assert_eq!(code, 409, "{body}");
    w.bootstrap().await;
    let minted = w.fake.live_minted();
    assert_eq!(minted.len(), 1);
    // Another owner may not; alice's api token needs secrets:write, and
    // with it waits for a human.
    let (code, _) = w.s.json(Method::DELETE, path, Some(&w.op), None).await;
    assert_eq!(code, 403);
    let (code, body) =
        w.s.json(Method::DELETE, path, Some(&w.alice_api), None)
            .await;
    assert_eq!(
        (code, body["error"]["code"].as_str()),
        (403, Some("insufficient_scope"))
    );
    let api = w.alice_secrets_api().await;
    let (code, held) = w.s.json(Method::DELETE, path, Some(&api), None).await;
    assert_eq!(code, 202, "{held}");
    assert_eq!(w.fake.live_minted().len(), 1, "nothing happens while held");
    assert_eq!(w.status("dbx").await["valid"], true);

    let id = held["approval_id"].as_str().unwrap();
    let (code, decided) =
        w.s.json(
            Method::POST,
            &format!("/v1/approvals/{id}/decision"),
            Some(&w.alice),
            Some(json!({"decision": "approve"})),
        )
        .await;
    assert_eq!(code, 200, "{decided}");
    assert_eq!(decided["status"], "executed", "{decided}");
    assert_eq!(
        decided["result"]["revoked_token_ids"],
        json!([minted[0].id])
    );
    assert!(w.fake.live_minted().is_empty(), "revoked at the upstream");
    assert_eq!(w.status("dbx").await["valid"], false);
    let (_, secrets) =
        w.s.json(Method::GET, "/v1/secrets", Some(&w.alice), None)
            .await;
    assert!(!secrets.to_string().contains("upstream.dbx"), "{secrets}");
    let audit = w.audit_text().await;
    assert!(!audit.contains(&minted[0].value));

    // The owner may bootstrap again at once; rotation has nothing to do
    // meanwhile.
    w.advance(600).await;
    assert!(w.fake.live_minted().is_empty());
    w.bootstrap().await;
    assert_eq!(w.fake.live_minted().len(), 1);
    assert_eq!(w.status("dbx").await["valid"], true);
}

async fn an_approved_revoke_claims_first_and_calls_the_upstream_once_across_replicas(
    engine: Engine,
) {
    let w = world(engine, "expire").await;
    w.bootstrap().await;
    let replica = w.s.replica().await;
    let path = "/v1/upstreams/dbx/credential";
    let api = w.alice_secrets_api().await;
    let (code, held) = w.s.json(Method::DELETE, path, Some(&api), None).await;
    assert_eq!(code, 202, "{held}");
    let id = held["approval_id"].as_str().unwrap().to_string();
    let deletes_before = w.fake.calls_to("/token/delete");

    // The human's approval runs it, and its revoke call hangs upstream.
    w.fake.stall_next("/token/delete");
    let decision = {
        let request =
            w.s.client
                .post(format!("{}/v1/approvals/{id}/decision", w.s.url))
                .bearer_auth(&w.alice)
                .json(&json!({"decision": "approve"}));
        tokio::spawn(async move {
            let r = request.send().await.unwrap();
            (r.status().as_u16(), r.json::<Value>().await.unwrap())
        })
    };
    w.fake
        .wait_stalled(std::time::Duration::from_secs(10))
        .await;
    // Claimed while it calls out: neither replica's sweeper runs it again.
    let (code, seen) = replica
        .json(
            Method::GET,
            &format!("/v1/approvals/{id}"),
            Some(&w.alice),
            None,
        )
        .await;
    assert_eq!(code, 200, "{seen}");
    assert_eq!(seen["status"], "executing", "{seen}");
    gatehouse_api::gate::sweeper::sweep(replica.state()).await;
    gatehouse_api::gate::sweeper::sweep(w.s.state()).await;
    w.fake.release();
    let (code, decided) = decision.await.unwrap();
    assert_eq!(code, 200, "{decided}");
    // Whichever executor won the claim (the decision, or a replica's
    // background sweeper in between) finishes it.
    let started = Instant::now();
    loop {
        let (_, seen) =
            w.s.json(
                Method::GET,
                &format!("/v1/approvals/{id}"),
                Some(&w.alice),
                None,
            )
            .await;
        if seen["status"] == "executed" {
            break;
        }
        assert!(
            started.elapsed() < std::time::Duration::from_secs(10),
            "never executed: {seen}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(
        w.fake.calls_to("/token/delete") - deletes_before,
        1,
        "the upstream saw exactly one revoke"
    );
    assert!(w.fake.live_minted().is_empty());
}

async fn deprovisioning_the_owner_revokes_the_upstream_tokens(engine: Engine) {
    let w = world(engine, "expire").await;
    w.bootstrap().await;
    assert_eq!(w.fake.live_minted().len(), 1);
    let (code, body) =
        w.s.json(Method::DELETE, "/v1/owners/alice@x.org", Some(&w.op), None)
            .await;
    assert_eq!(code, 200, "{body}");
    assert!(
        w.fake.live_minted().is_empty(),
        "a removed owner's upstream tokens do not outlive them"
    );
}

on_both_engines!(
    an_approved_revoke_claims_first_and_calls_the_upstream_once_across_replicas,
    deprovisioning_the_owner_revokes_the_upstream_tokens,
    the_owner_takes_back_the_credential_through_the_gate,
    bootstrap_exchanges_the_pasted_token_for_a_minted_one_and_revokes_it,
    bootstrap_refuses_empty_foreign_and_mismatched_tokens,
    a_second_paste_while_active_is_409_and_never_reaches_the_upstream,
    rotation_overlaps_at_most_two_tokens_and_idle_mints_nothing,
    keep_alive_rotates_while_idle,
    a_failed_revoke_is_retried_with_backoff_and_the_new_token_kept,
    an_upstream_outage_backs_off_and_the_current_token_stays,
    an_unidentifiable_pasted_token_is_left_alone_and_said_so,
    only_a_human_session_of_the_owner_may_bootstrap,
    the_generic_driver_is_described_in_config,
    upstream_secret_names_are_reserved,
);
