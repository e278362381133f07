//! Untrusted users at the door of the admin view: refused logins are slowed down more and more,
//! the session cookie is `Secure` when eventmill is served over HTTPS, and `eventmill config`
//! never prints a secret.

use crate::helpers::{TestApp, TestEnv};

async fn login(app: &TestApp, client: &reqwest::Client, token: &str) -> reqwest::Response {
    client
        .post(app.url("/admin/login"))
        .header("content-type", "application/x-www-form-urlencoded")
        .header("origin", format!("http://{}", app.addr))
        .body(format!("token={token}&next=%2Fadmin"))
        .send()
        .await
        .unwrap()
}

fn header(response: &reqwest::Response, name: &str) -> String {
    response.headers().get(name).and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned()
}

#[tokio::test]
async fn refused_logins_wait_longer_each_time_and_an_https_session_cookie_is_secure() {
    let app = TestApp::api(TestEnv::with(&[("EVENTMILL_HTTPS", "true")]).await).await;
    let client = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let mut waits = Vec::new();
    for _ in 0..2 {
        let refused = login(&app, &client, "wrong").await;
        assert_eq!(refused.status(), 401);
        assert!(header(&refused, "set-cookie").is_empty());
        waits.push(header(&refused, "retry-after"));
    }
    assert_eq!(waits, ["1", "2"], "each refusal in a row waits twice as long");
    let ok = login(&app, &client, "test-admin-token").await;
    assert_eq!(ok.status(), 303);
    let cookie = header(&ok, "set-cookie");
    assert!(cookie.contains("; Secure") && cookie.contains("HttpOnly"), "{cookie}");
    assert_eq!(header(&login(&app, &client, "wrong").await, "retry-after"), "1", "a success resets the count");
    app.stop().await;
}

#[tokio::test]
async fn without_https_the_cookie_has_no_secure_flag() {
    let app = TestApp::api(TestEnv::new().await).await;
    let client = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let cookie = header(&login(&app, &client, "test-admin-token").await, "set-cookie");
    assert!(cookie.contains("eventmill_admin=") && !cookie.contains("Secure"), "{cookie}");
    app.stop().await;
}

#[tokio::test]
async fn eventmill_config_masks_every_secret() {
    let secrets = ["adm1n-s3cret", "r3ad-s3cret", "k3y-one", "k3y-two", "pgpa55", "smtppa55"];
    let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_eventmill"))
        .arg("config")
        .env("EVENTMILL_ADMIN_TOKEN", secrets[0])
        .env("EVENTMILL_READONLY_TOKEN", secrets[1])
        .env("EVENTMILL_INGEST_KEYS", format!("{},{}", secrets[2], secrets[3]))
        .env("EVENTMILL_DATABASE_URL", format!("postgres://eventmill:{}@127.0.0.1:1/x", secrets[4]))
        .env("EVENTMILL_SMTP_URL", format!("smtp://mailer:{}@127.0.0.1:25", secrets[5]))
        .env("EVENTMILL_HTTPS", "true")
        .output()
        .await
        .unwrap();
    let text = format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    assert!(output.status.success(), "{text}");
    assert!(text.contains("EVENTMILL_HTTPS") && text.contains("EVENTMILL_MAX_CONNECTIONS"), "{text}");
    for secret in secrets {
        assert!(!text.contains(secret), "config printed {secret}: {text}");
    }
}
