#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! Upstream MCP servers on both engines: saved only as a gated action,
//! kept per owner (one owner's name never reaches another's row), replaced
//! in place, deleted with their audit record, gone with their owner.

use gatehouse_domain::approvals::ApprovalStatus;
use gatehouse_domain::{CredentialClass, Role};
use gatehouse_store::*;

mod common;
use common::*;

const ALICE: &str = "alice@example.com";
const BOB: &str = "bob@example.com";

fn server(owner: &str, name: &str, url: &str) -> McpServerRecord {
    McpServerRecord {
        owner: email(owner),
        name: name.into(),
        url: url.into(),
        auth: Some(r#"{"format":"Bearer {value}","header":"authorization","secret":"GH"}"#.into()),
        tools: r#"{"allow":["*"],"gated":["delete_*"]}"#.into(),
        created_at: 20,
        updated_at: 20,
    }
}

async fn save(f: &Fixture, m: &McpServerRecord, now: i64) -> ActionEffect {
    match f
        .store
        .run_gated(
            &f.key,
            &GatedAction::PutMcpServer(m.clone()),
            None,
            vec![ev("policy.change", m.owner.as_str())],
            now,
        )
        .await
        .unwrap()
    {
        RunResult::Ran(effect) => effect,
        RunResult::NotApproved => panic!("a direct run needs no approval"),
    }
}

async fn owners(f: &Fixture) {
    for who in [ALICE, BOB] {
        f.store
            .create_owner(&new_owner(who, Role::Owner), ev("owner.create", who), 10)
            .await
            .unwrap();
    }
}

async fn servers_are_saved_replaced_and_kept_per_owner(f: Fixture) {
    owners(&f).await;
    let a = server(ALICE, "github", "https://mcp.example.com/a");
    assert_eq!(
        save(&f, &a, 20).await,
        ActionEffect::McpServer(PutOutcome::Created)
    );
    let b = server(BOB, "github", "https://mcp.example.com/b");
    assert_eq!(
        save(&f, &b, 21).await,
        ActionEffect::McpServer(PutOutcome::Created)
    );

    let mut a2 = server(ALICE, "github", "https://mcp.example.com/a2");
    a2.auth = None;
    a2.updated_at = 30;
    a2.created_at = 30;
    assert_eq!(
        save(&f, &a2, 30).await,
        ActionEffect::McpServer(PutOutcome::Replaced)
    );

    let got = f
        .store
        .mcp_server(&email(ALICE), "github")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(got.url, "https://mcp.example.com/a2");
    assert_eq!(got.auth, None);
    assert_eq!(
        got.created_at, 20,
        "a replacement keeps when it was created"
    );
    assert_eq!(got.updated_at, 30);
    let bobs = f
        .store
        .mcp_server(&email(BOB), "github")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(bobs, b);
    assert!(f
        .store
        .mcp_server(&email(ALICE), "other")
        .await
        .unwrap()
        .is_none());

    save(&f, &server(ALICE, "another", "https://x.example.com/"), 31).await;
    let names: Vec<_> = f
        .store
        .mcp_servers(&email(ALICE))
        .await
        .unwrap()
        .into_iter()
        .map(|m| m.name)
        .collect();
    assert_eq!(names, ["another", "github"]);
}

async fn a_server_of_a_missing_owner_is_not_saved(f: Fixture) {
    let effect = save(&f, &server(ALICE, "github", "https://mcp.example.com/"), 20).await;
    assert_eq!(
        effect,
        ActionEffect::Failed("the owner no longer exists".into())
    );
    assert!(f.store.mcp_servers(&email(ALICE)).await.unwrap().is_empty());
}

async fn deleting_touches_only_the_owners_row_and_is_audited(f: Fixture) {
    owners(&f).await;
    save(&f, &server(ALICE, "github", "https://a.example.com/"), 20).await;
    save(&f, &server(BOB, "github", "https://b.example.com/"), 20).await;
    let before = f.store.audit_all().await.unwrap().0.len();
    assert!(!f
        .store
        .delete_mcp_server(&email(ALICE), "nope", ev("mcp.server.delete", ALICE), 40)
        .await
        .unwrap());
    assert_eq!(
        f.store.audit_all().await.unwrap().0.len(),
        before,
        "nothing deleted, nothing audited"
    );
    assert!(f
        .store
        .delete_mcp_server(&email(ALICE), "github", ev("mcp.server.delete", ALICE), 40)
        .await
        .unwrap());
    let log = f.store.audit_all().await.unwrap().0;
    assert_eq!(log.len(), before + 1);
    assert_eq!(log.last().unwrap().action, "mcp.server.delete");
    assert!(f
        .store
        .mcp_server(&email(ALICE), "github")
        .await
        .unwrap()
        .is_none());
    assert!(f
        .store
        .mcp_server(&email(BOB), "github")
        .await
        .unwrap()
        .is_some());
}

async fn servers_go_with_their_owner(f: Fixture) {
    owners(&f).await;
    save(&f, &server(ALICE, "github", "https://a.example.com/"), 20).await;
    let action = GatedAction::DeprovisionOwner {
        owner: email(ALICE),
        token_expiry: 10_000,
    };
    f.store
        .run_gated(
            &f.key,
            &action,
            None,
            vec![ev("owner.deprovision", ALICE)],
            50,
        )
        .await
        .unwrap();
    assert!(f.store.mcp_servers(&email(ALICE)).await.unwrap().is_empty());
}

/// A gated tool call completes its claimed approval with nothing but its
/// result: the call itself happened outside the store, once.
async fn a_claimed_tool_call_completes_once(f: Fixture) {
    owners(&f).await;
    let approval = ApprovalRecord {
        id: "ap1".into(),
        owner: email(ALICE),
        verb: "mcp.tool".into(),
        params: r#"{"arguments":{"repo":"x"},"server":"github","tool":"delete_repo"}"#.into(),
        params_digest: vec![1; 32],
        sealed: None,
        requester: Requester {
            class: CredentialClass::Agent,
            subject: "bot".into(),
            jti: Some("j1".into()),
            agent: Some("bot".into()),
            job: None,
        },
        status: ApprovalStatus::Pending,
        required: 1,
        created_at: 20,
        expires_at: 1000,
        updated_at: 20,
        result: None,
        sealed_result: None,
        error: None,
        decisions: Vec::new(),
    };
    f.store
        .create_approval(&approval, ev("approval.request", ALICE), 20)
        .await
        .unwrap();
    let decision = ApprovalDecision {
        decider: ALICE.into(),
        decision: gatehouse_domain::approvals::Decision::Approve,
        reason: String::new(),
        decided_at: 30,
    };
    f.store
        .decide_approval("ap1", &decision, ev("approval.decide", ALICE), 30)
        .await
        .unwrap();
    assert!(f.store.claim_approval("ap1", 31).await.unwrap());
    assert!(
        !f.store.claim_approval("ap1", 31).await.unwrap(),
        "one claimer"
    );
    let completion = Completion {
        approval_id: "ap1".into(),
        claimed: true,
        result: r#"{"server":"github","tool":"delete_repo","is_error":false}"#.into(),
        sealed_result: Some(vec![9, 9]),
    };
    let first = f
        .store
        .run_gated(
            &f.key,
            &GatedAction::RecordMcpCall,
            Some(&completion),
            vec![ev("mcp.tool", ALICE)],
            32,
        )
        .await
        .unwrap();
    assert_eq!(first, RunResult::Ran(ActionEffect::Done));
    let second = f
        .store
        .run_gated(
            &f.key,
            &GatedAction::RecordMcpCall,
            Some(&completion),
            vec![ev("mcp.tool", ALICE)],
            33,
        )
        .await
        .unwrap();
    assert_eq!(second, RunResult::NotApproved);
    let got = f.store.approval("ap1").await.unwrap().unwrap();
    assert_eq!(got.status, ApprovalStatus::Executed);
    assert_eq!(got.sealed_result, Some(vec![9, 9]));
}

conformance!(
    servers_are_saved_replaced_and_kept_per_owner,
    a_server_of_a_missing_owner_is_not_saved,
    deleting_touches_only_the_owners_row_and_is_audited,
    servers_go_with_their_owner,
    a_claimed_tool_call_completes_once,
);
