//! Added latency of a `tools/call` forwarded by the MCP gateway, against
//! calling the same upstream directly, in the same run:
//!
//! - direct: an MCP client session over Gatehouse's own transport (the
//!   one outbound client, TLS, the same upstream), calling `search`;
//! - gateway: rmcp's client on `/mcp/{name}` with an agent token, the
//!   same call: token verified, server looked up, secret opened and
//!   injected, a short upstream session per call, audited.
//!
//! Prints p50/p99 of each and their ratios. `cargo bench -p gatehouse-mcp
//! --bench forwarded_call` (ITERATIONS in the environment, default 200).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "../tests/support/mod.rs"]
mod support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use rmcp::model::CallToolRequestParams;
use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
use rmcp::transport::StreamableHttpClientTransport;
use rmcp::ServiceExt;
use serde_json::json;

use gatehouse_mcp::gateway::upstream::{AuthHeader, OutboundHttp};
use support::*;

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i]
}

fn call() -> CallToolRequestParams {
    CallToolRequestParams::new("search").with_arguments(args(json!({"repo": "gatehouse"})))
}

fn main() {
    let iterations: usize = std::env::var("ITERATIONS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async move {
        let s = server(Engine::Sqlite, &[]).await;
        let op = s.claim(OP).await;
        let alice = s.owner(&op, ALICE).await;
        s.secret(&alice, "GH", SECRET_VALUE).await;
        let (status, body) = s
            .save_server(&alice, s.server_body("gh", &["*"], &[]))
            .await;
        assert_eq!(status, 201, "{body}");
        let agent = s.agent_token(&alice, "bot").await;

        let auth = AuthHeader::new(
            "authorization",
            zeroize::Zeroizing::new(format!("Bearer {SECRET_VALUE}")),
        )
        .unwrap();
        let direct = ()
            .serve(StreamableHttpClientTransport::with_client(
                OutboundHttp::new(Arc::clone(&s.state().outbound), Some(auth)),
                StreamableHttpClientTransportConfig::with_uri(s.upstream.url()),
            ))
            .await
            .unwrap();
        let gateway = s.connect("gh", &agent).await;

        let mut direct_times = Vec::with_capacity(iterations);
        let mut gateway_times = Vec::with_capacity(iterations);
        for i in 0..(iterations + 20) {
            // Interleaved, so drift hits both alike; the first 20 warm up.
            let t = Instant::now();
            direct.peer().call_tool(call()).await.unwrap();
            let d = t.elapsed();
            let t = Instant::now();
            let r = gateway.peer().call_tool(call()).await.unwrap();
            let g = t.elapsed();
            assert_ne!(r.is_error, Some(true));
            if i >= 20 {
                direct_times.push(d);
                gateway_times.push(g);
            }
        }
        direct_times.sort();
        gateway_times.sort();
        let (d50, d99) = (
            percentile(&direct_times, 0.5),
            percentile(&direct_times, 0.99),
        );
        let (g50, g99) = (
            percentile(&gateway_times, 0.5),
            percentile(&gateway_times, 0.99),
        );
        println!("forwarded tools/call, {iterations} calls each (same run, interleaved)");
        println!("direct  p50 {d50:?}  p99 {d99:?}");
        println!("gateway p50 {g50:?}  p99 {g99:?}");
        println!(
            "ratio   p50 {:.2}x  p99 {:.2}x  (added p50 {:?})",
            g50.as_secs_f64() / d50.as_secs_f64(),
            g99.as_secs_f64() / d99.as_secs_f64(),
            g50.saturating_sub(d50)
        );
        let _ = gateway.cancel().await;
        let _ = direct.cancel().await;
    });
}
