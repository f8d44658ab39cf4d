//! Webhook verification cost per provider against a bare HMAC-SHA256 (or
//! Ed25519 verify) of the same body, and requests/s end to end with
//! forwarding to a loopback receiver, in the same run.
//! `cargo bench -p gatehouse-api --bench webhook_verification`
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;
use common::measure;

use std::collections::BTreeMap;
use std::hint::black_box;
use std::sync::Arc;
use std::time::Instant;

use ed25519_dalek::{Signer, SigningKey};
use gatehouse_domain::clock::{Clock, SystemClock};
use gatehouse_domain::crypto::SymmetricKey;
use gatehouse_domain::master_key::encode_master_key;
use gatehouse_domain::webhook::{verifier_for, Provider};
use gatehouse_domain::SecretBytes;
use hmac::{Hmac, Mac};
use sha2::Sha256;

fn hmac_hex(key: &[u8], msg: &[u8]) -> String {
    let mut m = Hmac::<Sha256>::new_from_slice(key).unwrap();
    m.update(msg);
    hex::encode(m.finalize().into_bytes())
}

fn main() {
    let body = vec![b'x'; 2048];
    let now = SystemClock.now();
    let secret = b"bench-secret-value";
    let bare_hmac = measure(20_000, || {
        let mut m = Hmac::<Sha256>::new_from_slice(secret).unwrap();
        m.update(black_box(&body));
        black_box(m.finalize());
    });
    let discord_key = SigningKey::from_bytes(&[9; 32]);
    let mut signed = now.to_string().into_bytes();
    signed.extend_from_slice(&body);
    let discord_sig = discord_key.sign(&signed);
    let bare_ed = measure(5_000, || {
        black_box(
            discord_key
                .verifying_key()
                .verify_strict(black_box(&signed), &discord_sig),
        )
        .unwrap();
    });
    println!(
        "body {} bytes; bare HMAC-SHA256 {bare_hmac:.0} ns; bare Ed25519 verify {bare_ed:.0} ns",
        body.len()
    );
    let body_str = String::from_utf8(body.clone()).unwrap();
    type Headers = Vec<(String, Vec<u8>)>;
    let cases: Vec<(Provider, String, Headers, f64)> = vec![
        (
            Provider::Github,
            String::from_utf8_lossy(secret).into(),
            vec![(
                "X-Hub-Signature-256".into(),
                format!("sha256={}", hmac_hex(secret, &body)).into_bytes(),
            )],
            bare_hmac,
        ),
        (
            Provider::Slack,
            String::from_utf8_lossy(secret).into(),
            vec![
                (
                    "X-Slack-Request-Timestamp".into(),
                    now.to_string().into_bytes(),
                ),
                (
                    "X-Slack-Signature".into(),
                    format!(
                        "v0={}",
                        hmac_hex(secret, format!("v0:{now}:{body_str}").as_bytes())
                    )
                    .into_bytes(),
                ),
            ],
            bare_hmac,
        ),
        (
            Provider::Stripe,
            String::from_utf8_lossy(secret).into(),
            vec![(
                "Stripe-Signature".into(),
                format!(
                    "t={now},v1={}",
                    hmac_hex(secret, format!("{now}.{body_str}").as_bytes())
                )
                .into_bytes(),
            )],
            bare_hmac,
        ),
        (
            Provider::Discord,
            hex::encode(discord_key.verifying_key().as_bytes()),
            vec![
                ("X-Signature-Timestamp".into(), now.to_string().into_bytes()),
                (
                    "X-Signature-Ed25519".into(),
                    hex::encode(discord_sig.to_bytes()).into_bytes(),
                ),
            ],
            bare_ed,
        ),
        (
            Provider::Telegram,
            "tg-secret-token".into(),
            vec![(
                "X-Telegram-Bot-Api-Secret-Token".into(),
                b"tg-secret-token".to_vec(),
            )],
            bare_hmac,
        ),
    ];
    for (provider, secret, headers, baseline) in cases {
        let verifier = verifier_for(provider, &SecretBytes::from_string(secret)).unwrap();
        verifier.verify(&body, &headers, now).unwrap();
        let cost = measure(5_000, || {
            black_box(verifier.verify(black_box(&body), &headers, now)).unwrap();
        });
        println!(
            "{:<10} {cost:>9.0} ns = {:.2}x its bare primitive",
            provider.as_str(),
            cost / baseline
        );
    }
    end_to_end();
}

#[tokio::main]
async fn end_to_end() {
    // Receiver.
    let app = axum::Router::new().route("/in", axum::routing::post(|| async { "ok" }));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let receiver = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    // Gatehouse on SQLite.
    let dir = tempfile::tempdir().unwrap();
    let env: BTreeMap<String, String> = [
        ("GATEHOUSE_LISTEN", "127.0.0.1:0".to_string()),
        ("GATEHOUSE_EGRESS_LISTEN", "127.0.0.1:0".to_string()),
        ("GATEHOUSE_DATA_DIR", dir.path().display().to_string()),
        (
            "GATEHOUSE_MASTER_KEY",
            encode_master_key(&SymmetricKey::generate())
                .trim()
                .to_string(),
        ),
        // The receiver is on loopback: forward_to is an outbound target,
        // let through as an operator would an internal endpoint.
        (
            "GATEHOUSE_EGRESS_ALLOW_PRIVATE_CIDRS",
            "127.0.0.0/8".to_string(),
        ),
        (
            "GATEHOUSE_EGRESS_ALLOWED_PORTS",
            receiver.port().to_string(),
        ),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    let config = gatehouse_api::config::Config::load(None, &env).unwrap();
    let running =
        gatehouse_api::server::start(config, Arc::new(SystemClock), std::future::pending())
            .await
            .unwrap();
    let base = format!("http://{}", running.addr);
    let client = reqwest::Client::new();
    let claim: serde_json::Value = client
        .post(format!("{base}/v1/bootstrap/claim"))
        .json(&serde_json::json!({"code": running.bootstrap_code.clone().unwrap(), "email": "op@x.org"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let token = claim["token"].as_str().unwrap().to_string();
    let hook: serde_json::Value = client
        .post(format!("{base}/v1/hooks"))
        .bearer_auth(&token)
        .json(&serde_json::json!({"provider": "github", "secret": "s3cret", "forward_to": format!("http://{receiver}/in")}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let url = format!("{base}/hooks/{}", hook["hook_id"].as_str().unwrap());
    let body = vec![b'x'; 2048];
    let sig = format!("sha256={}", hmac_hex(b"s3cret", &body));
    let total = 4000;
    let concurrency = 16;
    let direct = format!("http://{receiver}/in");
    for (label, target, signed) in [
        ("direct to the receiver", direct.as_str(), false),
        ("through Gatehouse", url.as_str(), true),
    ] {
        let start = Instant::now();
        let mut tasks = Vec::new();
        for _ in 0..concurrency {
            let client = client.clone();
            let target = target.to_string();
            let body = body.clone();
            let sig = sig.clone();
            tasks.push(tokio::spawn(async move {
                for _ in 0..total / concurrency {
                    let mut req = client.post(&target).body(body.clone());
                    if signed {
                        req = req.header("X-Hub-Signature-256", &sig);
                    }
                    assert!(req.send().await.unwrap().status().is_success());
                }
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
        let rate = f64::from(total) / start.elapsed().as_secs_f64();
        println!("{label:<24} {rate:>8.0} requests/s ({concurrency} connections, 2 KiB bodies)");
    }
    let _ = running.stop().await;
}
