//! The admin view's ingestion stream page and the access rules every admin route shares: login,
//! read-only role, CSRF and origin checks (browser scenarios plus direct HTTP checks).

use std::time::Duration;

use chrono::Utc;
use eventmill::{
    domain::parse_event,
    stream::{dead_letter, dead_letter::DeadLetter, entry},
};
use serde_json::value::RawValue;

use crate::{
    browser::{READONLY_TOKEN, run_scenario},
    helpers::{TestApp, TestEnv, eventually},
};

/// A readable event stuck in the dead-letter stream (as if PostgreSQL had refused it 3 times).
async fn add_dead_letter(env: &TestEnv, event_json: &str) -> uuid::Uuid {
    let raw: Box<RawValue> = serde_json::from_str(event_json).unwrap();
    let event = parse_event(&raw, 0, Utc::now()).unwrap();
    let letter = DeadLetter {
        id: String::new(),
        entry_id: "1-0".into(),
        reason: "database was down: connection refused".into(),
        deliveries: 3,
        failed_at: String::new(),
        request_id: "req-dead-1".into(),
        payload: entry::encode(&event, Utc::now()),
    };
    let mut pipe = redis::pipe();
    dead_letter::queue_move(&mut pipe, &env.resources.keys, &letter);
    pipe.query_async::<()>(&mut env.redis()).await.unwrap();
    event.event_id
}

pub async fn admin_env() -> TestEnv {
    TestEnv::with(&[("EVENTMILL_READONLY_TOKEN", READONLY_TOKEN)]).await
}

#[tokio::test]
async fn a_dead_letter_replayed_from_the_stream_page_is_stored() {
    let env = admin_env().await;
    let event_id =
        add_dead_letter(&env, r#"{"event_type":"purchase","user_id":"u1","properties":{"amount":12.5}}"#).await;
    let app = TestApp::full(env).await;
    run_scenario(&app, "dead-letters", &[]).await;

    let pool = app.env.pool().clone();
    let stored = eventually(Duration::from_secs(10), || async {
        sqlx::query_scalar::<_, i64>("SELECT count(*) FROM events WHERE event_id = $1")
            .bind(event_id)
            .fetch_one(&pool)
            .await
            .unwrap()
            == 1
    })
    .await;
    assert!(stored, "the replayed event is stored");
    assert_eq!(dead_letter::count(&mut app.env.redis(), &app.env.resources.shards).await.unwrap(), 0);
    app.stop().await;
}

#[tokio::test]
async fn without_a_token_pages_lead_to_login_and_the_read_only_token_may_look_but_not_act() {
    let env = admin_env().await;
    add_dead_letter(&env, r#"{"event_type":"signup"}"#).await;
    let app = TestApp::api(env).await;
    run_scenario(&app, "auth", &[]).await;
    assert_eq!(
        dead_letter::count(&mut app.env.redis(), &app.env.resources.shards).await.unwrap(),
        1,
        "the read-only caller changed nothing"
    );
    app.stop().await;
}

/// Logs in with the form and answers the session cookie.
async fn session_cookie(app: &TestApp, token: &str) -> String {
    let client = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let response = client.post(app.url("/admin/login")).form(&[("token", token)]).send().await.unwrap();
    assert_eq!(response.status(), 303);
    let cookie = response.headers()["set-cookie"].to_str().unwrap().to_owned();
    assert!(cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"), "{cookie}");
    cookie.split(';').next().unwrap().to_owned()
}

#[tokio::test]
async fn an_admin_session_action_without_the_csrf_token_or_from_another_origin_is_refused() {
    let env = admin_env().await;
    add_dead_letter(&env, r#"{"event_type":"signup"}"#).await;
    let app = TestApp::api(env).await;
    let cookie = session_cookie(&app, "test-admin-token").await;
    let client = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let replay_all = app.url("/admin/api/dead-letters/replay-all");

    let no_csrf = client.post(&replay_all).header("cookie", &cookie).json(&serde_json::json!({})).send().await.unwrap();
    assert_eq!(no_csrf.status(), 403, "a cookie session must send its CSRF token");

    let page =
        client.get(app.url("/admin/stream")).header("cookie", &cookie).send().await.unwrap().text().await.unwrap();
    let csrf = page.split(r#"name="csrf-token" content=""#).nth(1).unwrap().split('"').next().unwrap().to_owned();
    let foreign = client
        .post(&replay_all)
        .header("cookie", &cookie)
        .header("origin", "http://evil.example")
        .form(&[("csrf", csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(foreign.status(), 403, "another origin may not act even with the token");

    let form = [("csrf", csrf.as_str()), ("return_to", "/admin/stream")];
    let asked = client.post(&replay_all).header("cookie", &cookie).form(&form).send().await.unwrap();
    assert_eq!(asked.status(), 200, "the page's own form is accepted and asks for confirmation");
    let page = asked.text().await.unwrap();
    assert!(page.contains("Replay every dead letter?") && page.contains(r#"name="confirm" value="yes""#), "{page}");
    assert!(page.contains(&format!(r#"name="csrf" value="{csrf}""#)), "the confirmation posts the same fields: {page}");
    assert_eq!(dead_letter::count(&mut app.env.redis(), &app.env.resources.shards).await.unwrap(), 1, "nothing yet");

    let confirmed = [form[0], form[1], ("confirm", "yes")];
    let done = client.post(&replay_all).header("cookie", &cookie).form(&confirmed).send().await.unwrap();
    assert_eq!(done.status(), 303, "confirmed, it happens and redirects back");
    assert!(done.headers()["location"].to_str().unwrap().starts_with("/admin/stream?flash="));
    assert_eq!(dead_letter::count(&mut app.env.redis(), &app.env.resources.shards).await.unwrap(), 0);
    app.stop().await;
}

#[tokio::test]
async fn the_admin_api_answers_json_to_the_bearer_token() {
    let env = admin_env().await;
    add_dead_letter(&env, r#"{"event_type":"signup"}"#).await;
    let app = TestApp::api(env).await;
    let get = |path: &str, token: &str| app.client.get(app.url(path)).bearer_auth(token).send();
    let stream: serde_json::Value = get("/admin/api/stream", READONLY_TOKEN).await.unwrap().json().await.unwrap();
    assert_eq!(stream["dead_letters"], 1);
    let letters: serde_json::Value =
        get("/admin/api/dead-letters", READONLY_TOKEN).await.unwrap().json().await.unwrap();
    assert_eq!(letters["dead_letters"][0]["reason"], "database was down: connection refused");
    assert_eq!(get("/admin/api/stream", "wrong").await.unwrap().status(), 401);
    app.stop().await;
}
