//! The HTTP server's limits (SPEC section 4): a client sending its body too slowly gets 408 after
//! `EVENTMILL_REQUEST_TIMEOUT_MS`; connections over `EVENTMILL_MAX_CONNECTIONS` are answered 503 and
//! closed; 10,000 connections at once are answered or refused without a crash.

use std::time::Duration;

use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
};

use crate::{
    faults_support::Proc,
    helpers::{TestApp, TestEnv},
    private::free_port,
};

/// The first bytes the server sends back (empty when it closes without answering).
async fn answer(stream: &mut TcpStream) -> String {
    let mut buf = vec![0u8; 512];
    let n = tokio::time::timeout(Duration::from_secs(20), stream.read(&mut buf)).await.expect("an answer").unwrap_or(0);
    String::from_utf8_lossy(&buf[..n]).into_owned()
}

const STALLED: &str = "POST /v1/events/bulk HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n\
                       Content-Length: 100000\r\n\r\n{";

#[tokio::test]
async fn a_stalled_body_is_answered_408_after_the_request_timeout() {
    let app = TestApp::api(TestEnv::with(&[("EVENTMILL_REQUEST_TIMEOUT_MS", "300")]).await).await;
    let mut stalled = Vec::new();
    for _ in 0..20 {
        let mut stream = TcpStream::connect(app.addr).await.unwrap();
        stream.write_all(STALLED.as_bytes()).await.unwrap();
        stalled.push(stream);
    }
    for stream in &mut stalled {
        assert!(answer(stream).await.starts_with("HTTP/1.1 408"), "a stalled body is answered 408");
    }
    let ok = app.post_json("/v1/events", r#"{"event_type":"page_view"}"#).await;
    assert_eq!(ok.status(), 202, "the server still serves");
    app.stop().await;
}

#[tokio::test]
async fn connections_over_the_cap_are_answered_503_and_the_slots_come_back() {
    let app = TestApp::api(TestEnv::with(&[("EVENTMILL_MAX_CONNECTIONS", "10")]).await).await;
    let mut held = Vec::new();
    for _ in 0..10 {
        let mut stream = TcpStream::connect(app.addr).await.unwrap();
        stream.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n").await.unwrap();
        assert!(answer(&mut stream).await.starts_with("HTTP/1.1 200"));
        held.push(stream); // kept alive: each holds a slot
    }
    let mut extra = TcpStream::connect(app.addr).await.unwrap();
    let refused = answer(&mut extra).await;
    assert!(refused.starts_with("HTTP/1.1 503") && refused.contains("Retry-After"), "{refused}");
    drop(held);
    let back = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            if let Ok(r) = app.client.get(app.url("/healthz")).send().await
                && r.status() == 200
            {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    });
    back.await.expect("closed connections give their slots back");
    app.stop().await;
}

/// Open files this process may hold (the soft limit).
fn open_file_limit() -> usize {
    let limits = std::fs::read_to_string("/proc/self/limits").unwrap_or_default();
    let line = limits.lines().find(|l| l.starts_with("Max open files")).unwrap_or_default();
    line.split_whitespace().nth(3).and_then(|n| n.parse().ok()).unwrap_or(1024)
}

fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let line = status.lines().find(|l| l.starts_with("VmRSS:")).unwrap_or_default();
    line.split_whitespace().nth(1).and_then(|n| n.parse().ok()).unwrap_or(0)
}

#[tokio::test]
async fn ten_thousand_connections_at_once_are_answered_or_refused_and_the_server_lives_on() {
    let env = TestEnv::new().await;
    let port = free_port();
    let serve = Proc::serve(&env, port, &[("EVENTMILL_MAX_CONNECTIONS", "1000")]).await;
    let pid = serve.pid();
    let before = rss_kib(pid);
    // Ten thousand where this process may open that many sockets (CI runners allow it).
    let n = 10_000.min(open_file_limit().saturating_sub(300));
    let mut streams = Vec::with_capacity(n);
    let mut failed_connects = 0;
    for _ in 0..n {
        match TcpStream::connect(("127.0.0.1", port)).await {
            Ok(stream) => streams.push(stream),
            Err(_) => failed_connects += 1,
        }
    }
    let peak = rss_kib(pid);
    let mut ok = 0;
    let mut refused = 0;
    for stream in &mut streams {
        if stream.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").await.is_err() {
            refused += 1;
            continue;
        }
        let reply = answer(stream).await;
        if reply.starts_with("HTTP/1.1 200") {
            ok += 1;
        } else {
            refused += 1;
        }
    }
    drop(streams);
    eprintln!(
        "{n} connections: {ok} answered 200, {refused} refused (503 or closed), {failed_connects} not connected; \
         serve RSS {before} KiB before, {peak} KiB with all open, {} KiB after",
        rss_kib(pid)
    );
    assert_eq!(ok + refused + failed_connects, n);
    assert!(ok >= 1000.min(n), "the first thousand are served");
    let alive = reqwest::get(format!("http://127.0.0.1:{port}/healthz")).await.unwrap();
    assert_eq!(alive.status(), 200, "the server lives on");
    serve.kill9().await;
}
