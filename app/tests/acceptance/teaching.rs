//! What the pages teach, in Chromium: after a replica dies, a revocation, a typo-locked demo
//! account or an empty quantity, the page a person sees says what really happened.
use reqwest::{Method, StatusCode};
use serde_json::json;
use sessionlab::{lab::LabConfig, session::Backend};

use crate::{
    browser::{Browser, click, fill, served_by, sign_up_and_fill_the_cart, text},
    harness::{Client, spawn_lab_with},
};

/// Sticky: the same user on this browser and on a phone pinned to another replica. The phone's
/// replica dies; "your devices" lists this browser alone, not a session that died with it. The
/// phone logs in again and ends this browser's session: its next page is the log-in form, which
/// says why.
#[tokio::test]
async fn sticky_devices_list_only_live_sessions_and_an_ended_one_is_told_why() {
    let lab = spawn_lab_with(LabConfig::new(Backend::Sticky, env!("CARGO_BIN_EXE_sessionlab").into())).await;
    let browser = Browser::start().await;
    let web = browser.web();
    let name = sign_up_and_fill_the_cart(web, lab.url()).await;
    let password = json!({"username": name, "password": format!("pw-{name}-long")});
    let mine = served_by(web).await;
    // New clients are spread round robin: one of the next few lands on another replica.
    let (phone, pinned) = {
        let mut found = None;
        for _ in 0..6 {
            let phone = Client::new(lab.url());
            let login = phone.post("/api/login", password.clone()).await;
            assert_eq!(login.status, StatusCode::OK, "{}", login.text);
            if login.replica != mine {
                found = Some((phone, login.replica));
                break;
            }
        }
        found.expect("a phone pinned to another replica than the browser's")
    };
    web.goto(&format!("{}/devices", lab.url())).await.unwrap();
    assert_eq!(web.find_all(fantoccini::Locator::Css("[data-session-id]")).await.unwrap().len(), 2);

    let pid = lab.kill_replica(&pinned).await.unwrap();
    lab.wait_for_restart(&pinned, pid, std::time::Duration::from_secs(30)).await.unwrap();
    assert_eq!(phone.get("/api/me").await.status, StatusCode::UNAUTHORIZED, "the phone's session died with {pinned}");
    web.refresh().await.unwrap();
    let rows = web.find_all(fantoccini::Locator::Css("[data-session-id]")).await.unwrap();
    assert_eq!(rows.len(), 1, "a session that died with {pinned} is listed as live");
    assert!(text(web, "table.devices tr.current").await.contains("this device"));

    let phone = Client::new(lab.url());
    assert_eq!(phone.post("/api/login", password).await.status, StatusCode::OK);
    let sessions = phone.get("/api/sessions").await.body["sessions"].as_array().unwrap().clone();
    let browser_session = sessions.iter().find(|s| s["current"] == json!(false)).expect("the browser's session");
    let id = browser_session["id"].as_str().unwrap();
    let ended = phone.send(Method::DELETE, &format!("/api/sessions/{id}"), None).await;
    assert_eq!(ended.status, StatusCode::NO_CONTENT);
    web.goto(&format!("{}/devices", lab.url())).await.unwrap();
    let notice = text(web, "[data-testid=session-ended]").await;
    assert!(notice.contains("finds no valid session for this browser"), "{notice}");
    browser.stop().await;
    lab.shutdown().await;
}

/// Five typos lock the shared demo account for everyone at this address: the form says it is
/// shared and points elsewhere. An emptied quantity box is explained in a person's terms.
#[tokio::test]
async fn a_locked_demo_account_and_an_empty_quantity_say_what_to_do() {
    let lab = spawn_lab_with(LabConfig::new(Backend::Redis, env!("CARGO_BIN_EXE_sessionlab").into())).await;
    let browser = Browser::start().await;
    let web = browser.web();
    for _ in 0..sessionlab::throttle::MAX_PER_USER_AND_ADDRESS {
        web.goto(&format!("{}/login", lab.url())).await.unwrap();
        fill(web, "input[name=username]", "alice").await;
        fill(web, "input[name=password]", "not-the-password").await;
        click(web, "form[action='/login'] button[type=submit]").await;
        assert!(text(web, "[data-testid=form-error]").await.contains("wrong username or password"));
    }
    web.goto(&format!("{}/login", lab.url())).await.unwrap();
    fill(web, "input[name=username]", "Alice").await;
    fill(web, "input[name=password]", "sessionlab-demo").await;
    click(web, "form[action='/login'] button[type=submit]").await;
    let locked = text(web, "[data-testid=form-error]").await;
    assert!(locked.contains("everyone using this lab shares") && locked.contains("log in as bob"), "{locked}");

    sign_up_and_fill_the_cart(web, lab.url()).await;
    web.goto(&format!("{}/cart", lab.url())).await.unwrap();
    let quantity = web.find(fantoccini::Locator::Css("table.cart input[name=qty]")).await.unwrap();
    quantity.clear().await.unwrap();
    click(web, "table.cart form.qty button").await;
    let message = text(web, "[data-testid=error-message]").await;
    assert!(message.contains("enter the quantity as a whole number") && !message.contains("Parse error"), "{message}");
    browser.stop().await;
    lab.shutdown().await;
}
