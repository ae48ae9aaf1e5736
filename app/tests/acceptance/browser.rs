//! A real browser through the native lab: Debian's headless Chromium, driven over WebDriver
//! (fantoccini → chromedriver). A newcomer's experiment, click for click: sign up, fill the
//! cart, open /lab, kill the replica that served the page, reload.
//!
//! Each test starts its own chromedriver in a process group of its own and a browser profile in
//! a temporary directory; when it ends, the group is killed and the test checks that no process
//! still uses that profile: no browser is left behind, even after a failure.
use std::{
    path::{Path, PathBuf},
    process::Stdio,
    time::Duration,
};

use fantoccini::{Client as WebDriver, ClientBuilder, Locator};
use nix::{sys::signal::Signal, unistd::Pid};
use serde_json::json;
use sessionlab::{
    lab::{Lab, LabConfig, process::free_port},
    session::Backend,
};
use tokio::process::{Child, Command};

use crate::harness::{spawn_lab_with, username};

/// Set to a directory (the make target `screenshots` uses `docs/img`) to keep the screenshots.
const SCREENSHOTS_ENV: &str = "SESSIONLAB_SCREENSHOTS";

pub struct Browser {
    driver: Child,
    profile: tempfile::TempDir,
    web: Option<WebDriver>,
}

impl Browser {
    pub async fn start() -> Self {
        let port = free_port().unwrap();
        let profile = tempfile::Builder::new().prefix("sessionlab-chromium-").tempdir().unwrap();
        let driver = Command::new("chromedriver")
            .arg(format!("--port={port}"))
            .process_group(0)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("chromedriver runs (apt-get install chromium-driver)");
        let status = format!("http://127.0.0.1:{port}/status");
        sessionlab::lab::process::wait_http_ok(&status, None, Duration::from_secs(20)).await.unwrap();
        let capabilities = json!({
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": "/usr/bin/chromium",
                "args": [
                    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                    "--window-size=1280,900", "--hide-scrollbars", "--lang=en-US",
                    format!("--user-data-dir={}", profile.path().display()),
                ],
            },
        });
        let web = ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
            .capabilities(capabilities.as_object().unwrap().clone())
            .connect(&format!("http://127.0.0.1:{port}"))
            .await
            .expect("chromedriver starts Chromium");
        Self { driver, profile, web: Some(web) }
    }

    pub fn web(&self) -> &WebDriver {
        self.web.as_ref().unwrap()
    }

    /// Ends the browser session, then the whole process group, then checks that nothing runs
    /// with this test's profile any more.
    pub async fn stop(mut self) {
        if let Some(web) = self.web.take() {
            let _ = web.close().await;
        }
        kill_group(&self.driver);
        let _ = self.driver.wait().await;
        let profile = self.profile.path().to_owned();
        for _ in 0..50 {
            if processes_using(&profile).is_empty() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("browser processes left behind: {:?}", processes_using(&profile));
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        kill_group(&self.driver);
    }
}

fn kill_group(driver: &Child) {
    if let Some(pid) = driver.id() {
        let _ = nix::sys::signal::killpg(Pid::from_raw(pid as i32), Signal::SIGKILL);
    }
}

/// PIDs of the processes whose command line names `profile`.
fn processes_using(profile: &Path) -> Vec<u32> {
    let needle = profile.to_string_lossy().into_owned();
    std::fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| entry.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            std::fs::read(format!("/proc/{pid}/cmdline"))
                .is_ok_and(|cmdline| String::from_utf8_lossy(&cmdline).contains(&needle))
        })
        .collect()
}

/// The element, once the page shows it (pages load after the click that asked for them).
async fn find(web: &WebDriver, css: &str) -> fantoccini::elements::Element {
    match web.wait().at_most(Duration::from_secs(10)).for_element(Locator::Css(css)).await {
        Ok(element) => element,
        Err(err) => panic!("{css}: {err}\n{}", web.source().await.unwrap_or_default()),
    }
}

pub async fn text(web: &WebDriver, css: &str) -> String {
    find(web, css).await.text().await.unwrap()
}

/// The replica the page's footer names.
pub async fn served_by(web: &WebDriver) -> String {
    text(web, "[data-testid=served-by] strong").await
}

pub async fn cart_badge(web: &WebDriver) -> String {
    text(web, "[data-testid=cart-badge]").await
}

/// Clicks a button that submits a form, and waits for the page it leads to.
pub async fn click(web: &WebDriver, css: &str) {
    let old_page = web.find(Locator::Css("html")).await.unwrap();
    find(web, css).await.click().await.unwrap();
    if !until_the_next_page(web, old_page).await {
        panic!("clicking {css} led nowhere");
    }
}

/// Waits until a new page has replaced `old_page` (its root element) and finished loading;
/// false if none came within five seconds.
pub async fn until_the_next_page(web: &WebDriver, old_page: fantoccini::elements::Element) -> bool {
    for _ in 0..200 {
        // The old document's element goes stale once the new page has replaced it.
        if old_page.tag_name().await.is_err() {
            let ready = web.execute("return document.readyState", vec![]).await.unwrap();
            if ready == "complete" {
                return true;
            }
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    false
}

pub async fn fill(web: &WebDriver, css: &str, value: &str) {
    find(web, css).await.send_keys(value).await.unwrap();
}

/// Signs up as a new user and adds two products from the catalog.
pub async fn sign_up_and_fill_the_cart(web: &WebDriver, url: &str) -> String {
    let name = username("browser");
    web.goto(&format!("{url}/register")).await.unwrap();
    fill(web, "input[name=username]", &name).await;
    fill(web, "input[name=password]", &format!("pw-{name}-long")).await;
    click(web, "form[action='/register'] button[type=submit]").await;
    fill_the_cart(web, &name).await;
    name
}

/// Logs in as the demo user the README's pictures show (the lab seeds `alice`), and adds two
/// products from the catalog.
async fn log_in_as_alice_and_fill_the_cart(web: &WebDriver, url: &str) -> String {
    web.goto(&format!("{url}/login")).await.unwrap();
    fill(web, "input[name=username]", "alice").await;
    fill(web, "input[name=password]", "sessionlab-demo").await;
    click(web, "form[action='/login'] button[type=submit]").await;
    fill_the_cart(web, "alice").await;
    "alice".into()
}

async fn fill_the_cart(web: &WebDriver, name: &str) {
    assert_eq!(text(web, "[data-testid=user]").await, format!("👤 {name}"));
    click(web, "article[data-product-id='1'] button").await;
    click(web, "article[data-product-id='5'] button").await;
    assert_eq!(cart_badge(web).await, "2");
}

/// Enters the admin token on /lab, unless this browser did already.
async fn unlock(web: &WebDriver, token: &str) {
    if web.find(Locator::Css("[data-testid=admin-token]")).await.is_ok() {
        fill(web, "[data-testid=admin-token]", token).await;
        click(web, "[data-testid=unlock-button]").await;
    }
    find(web, "[data-testid^=kill-]").await;
}

/// Opens /lab, unlocks the controls, and waits until the page is live (on the lab or compose).
pub async fn open_the_dashboard(web: &WebDriver, url: &str, token: &str) {
    web.goto(&format!("{url}/lab")).await.unwrap();
    unlock(web, token).await;
    // The page's script polls /lab/state every second and adds each answer to the strip.
    let strip = "[data-testid=strip] li";
    for _ in 0..100 {
        if web.find_all(Locator::Css(strip)).await.unwrap().len() >= 3 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(web.find_all(Locator::Css(strip)).await.unwrap().len() >= 3, "the dashboard is not live");
}

/// Kills, from the dashboard, the replica that served it. Returns it, once its process is gone
/// (and before the lab's supervisor restarts it).
async fn kill_the_serving_replica(web: &WebDriver, lab: &Lab) -> String {
    open_the_dashboard(web, lab.url(), lab.admin_token()).await;
    let victim = served_by(web).await;
    let pid = lab.replica_pid(&victim).unwrap();
    click(web, &format!("[data-testid=kill-{victim}]")).await;
    for _ in 0..100 {
        if lab.replica_pid(&victim) != Some(pid) {
            return victim;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("{victim} (pid {pid}) is still running after Kill");
}

/// The notice of the page the browser shows once a replica other than the dying one answered
/// (a killed replica answers Kill's redirect on its way down, and that page reloads itself).
async fn the_effect_of_the_kill(web: &WebDriver) -> String {
    for _ in 0..100 {
        if let Ok(element) = web.find(Locator::Css("[data-testid=notice]")).await
            && let Ok(notice) = element.text().await
            && notice.contains("was killed")
            && !notice.contains("on its way down")
        {
            return notice;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the page never showed the effect of the kill:\n{}", web.source().await.unwrap_or_default());
}

/// Waits until the dashboard's live line (redrawn every second) starts with `who`.
async fn live_view_says(web: &WebDriver, who: &str) {
    let mut seen = String::new();
    for _ in 0..50 {
        if let Ok(element) = web.find(Locator::Css("[data-testid=live-who]")).await
            && let Ok(text) = element.text().await
        {
            if text.starts_with(who) {
                return;
            }
            seen = text;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the live view says {seen:?}, not {who:?}");
}

async fn survives_a_kill_in_the_browser(backend: Backend, screenshots: bool) {
    let lab = spawn_lab_with(LabConfig::new(backend, env!("CARGO_BIN_EXE_sessionlab").into())).await;
    let browser = Browser::start().await;
    let web = browser.web();
    let name = if screenshots {
        let name = log_in_as_alice_and_fill_the_cart(web, lab.url()).await;
        take_screenshots(web, &lab).await;
        name
    } else {
        sign_up_and_fill_the_cart(web, lab.url()).await
    };
    let victim = kill_the_serving_replica(web, &lab).await;
    // No reload: the page Kill leads to shows the effect by itself.
    let notice = the_effect_of_the_kill(web).await;
    assert!(notice.contains(&victim), "{notice}");
    assert_eq!(text(web, "[data-testid=user]").await, format!("👤 {name}"), "{backend}: logged out by the kill");
    assert_eq!(cart_badge(web).await, "2", "{backend}: the cart changed");
    live_view_says(web, &format!("logged in as {name}, 2 item(s)")).await;
    browser.stop().await;
    lab.shutdown().await;
}

#[tokio::test]
async fn redis_a_killed_replica_costs_the_browser_nothing() {
    survives_a_kill_in_the_browser(Backend::Redis, true).await;
}

#[tokio::test]
async fn cookie_a_killed_replica_costs_the_browser_nothing() {
    survives_a_kill_in_the_browser(Backend::Cookie, false).await;
}

#[tokio::test]
async fn sticky_a_killed_replica_takes_the_session_and_the_page_says_why() {
    let lab = spawn_lab_with(LabConfig::new(Backend::Sticky, env!("CARGO_BIN_EXE_sessionlab").into())).await;
    let browser = Browser::start().await;
    let web = browser.web();
    let name = sign_up_and_fill_the_cart(web, lab.url()).await;
    let victim = kill_the_serving_replica(web, &lab).await;
    // No reload: the page Kill leads to (first from the dying replica itself, with sticky's
    // cookie) shows by itself that the session is gone, and the live view says who you are now.
    the_effect_of_the_kill(web).await;
    assert!(web.find(Locator::Css("[data-testid=user]")).await.is_err(), "still logged in after the kill");
    live_view_says(web, "a guest, 0 item(s)").await;
    assert_eq!(cart_badge(web).await, "0");
    let lost = text(web, "[data-testid=lost]").await;
    assert!(lost.contains("Your session is gone") && lost.contains(&name) && lost.contains(&victim), "{lost}");
    assert!(lost.contains("lives only in the memory of the replica"), "the page explains why: {lost}");
    if let Some(dir) = std::env::var_os(SCREENSHOTS_ENV) {
        save_screenshot(web, &PathBuf::from(dir).join("sticky-lost.png")).await;
    }
    browser.stop().await;
    lab.shutdown().await;
}

/// `memory` in Chromium, the article's opening example: sign up, reload. Only the replica that
/// served the sign-up shows you logged in; the others draw a guest, and their session inspector
/// says why.
#[tokio::test]
async fn memory_a_reload_on_another_replica_shows_you_logged_out_and_says_why() {
    let lab = spawn_lab_with(LabConfig::new(Backend::Memory, env!("CARGO_BIN_EXE_sessionlab").into())).await;
    let browser = Browser::start().await;
    let web = browser.web();
    let name = username("browser");
    web.goto(&format!("{}/register", lab.url())).await.unwrap();
    fill(web, "input[name=username]", &name).await;
    fill(web, "input[name=password]", &format!("pw-{name}-long")).await;
    click(web, "form[action='/register'] button[type=submit]").await;

    let (mut home, mut strangers) = (std::collections::BTreeSet::new(), std::collections::BTreeSet::new());
    for _ in 0..30 {
        web.goto(&format!("{}/", lab.url())).await.unwrap();
        let replica = served_by(web).await;
        match web.find(Locator::Css("[data-testid=user]")).await {
            Ok(user) => {
                assert_eq!(user.text().await.unwrap(), format!("👤 {name}"));
                home.insert(replica);
            }
            Err(_) => {
                strangers.insert(replica);
            }
        }
        if !home.is_empty() && strangers.len() == 2 {
            break;
        }
    }
    assert_eq!(home.len(), 1, "only one replica knows the sign-up: {home:?}");
    assert_eq!(strangers.len(), 2, "the other two never served a page: {strangers:?}");
    assert!(home.is_disjoint(&strangers), "a replica both knew and did not know the user");

    let why = loop {
        web.goto(&format!("{}/session", lab.url())).await.unwrap();
        if !home.contains(&served_by(web).await) {
            break text(web, "[data-testid=not-found]").await;
        }
    };
    assert!(why.contains("found no session") && why.contains("own memory"), "the inspector explains: {why}");
    if let Some(dir) = std::env::var_os(SCREENSHOTS_ENV) {
        save_screenshot(web, &PathBuf::from(dir).join("memory-not-found.png")).await;
    }
    browser.stop().await;
    lab.shutdown().await;
}

/// `actix-cookie` in Chromium: past roughly 3 KB of cart, adding a line answers with a page that
/// shows it, but the browser drops the oversized cookie and keeps the previous one. Nothing says
/// so; the next page shows the cart without the line. (sessionlab's `cookie` refuses it with 413.)
#[tokio::test]
async fn actix_cookie_the_browser_silently_drops_a_cart_past_its_cookie_limit() {
    let lab = spawn_lab_with(LabConfig::new(Backend::ActixCookie, env!("CARGO_BIN_EXE_sessionlab").into())).await;
    let browser = Browser::start().await;
    let web = browser.web();
    sign_up_and_fill_the_cart(web, lab.url()).await;
    let mut in_cart = 2;
    let mut lost = None;
    for id in (2..).filter(|id| *id != 5) {
        let button = format!("article[data-product-id='{id}'] button");
        if web.find(Locator::Css(&button)).await.is_err() {
            break;
        }
        click(web, &button).await;
        assert!(web.find(Locator::Css(".error-page")).await.is_err(), "line {id}: an error page");
        let badge: usize = cart_badge(web).await.parse().unwrap();
        if badge == in_cart {
            lost = Some(id);
            break;
        }
        assert_eq!(badge, in_cart + 1, "line {id}");
        in_cart = badge;
    }
    let lost = lost.expect("every line fitted: the catalog never reached the cookie limit");
    web.goto(&format!("{}/cart", lab.url())).await.unwrap();
    assert_eq!(cart_badge(web).await, in_cart.to_string(), "the cart after line {lost}");
    assert!(
        web.find(Locator::Css(&format!("[data-product-id='{lost}']"))).await.is_err(),
        "line {lost} is in the cart"
    );
    println!("actix-cookie in Chromium: line {lost} was dropped silently with {in_cart} lines in the cart");
    browser.stop().await;
    lab.shutdown().await;
}

/// `jwt` at its size wall, in Chromium. The 413 page still draws the session the request had
/// (the user, the cart, Log out), not a guest; the Session page still opens; and a user who
/// looked at the Session page nine times first fits as many lines as one who never looked.
#[tokio::test]
async fn jwt_at_the_size_wall_the_error_page_shows_your_session_and_looking_costs_no_lines() {
    let lab = spawn_lab_with(LabConfig::new(Backend::Jwt, env!("CARGO_BIN_EXE_sessionlab").into())).await;
    let browser = Browser::start().await;
    let web = browser.web();

    let name = sign_up_and_fill_the_cart(web, lab.url()).await;
    let fitted = fill_until_the_wall(web).await;
    assert_eq!(text(web, ".error-page h1").await, "Your session is full");
    assert_eq!(text(web, "[data-testid=user]").await, format!("👤 {name}"), "the 413 page drew a guest");
    assert_eq!(cart_badge(web).await, fitted.to_string(), "the 413 page's badge");
    assert!(web.find(Locator::Css("form[action='/logout'] button")).await.is_ok(), "no Log out on the 413 page");
    web.goto(&format!("{}/session", lab.url())).await.unwrap();
    assert!(web.find(Locator::Css(".error-page")).await.is_err(), "the Session page failed at the wall");
    assert_eq!(text(web, "[data-testid=user]").await, format!("👤 {name}"));
    click(web, "form[action='/logout'] button").await;

    let looker = sign_up_and_fill_the_cart(web, lab.url()).await;
    for _ in 0..9 {
        web.goto(&format!("{}/session", lab.url())).await.unwrap();
        assert_eq!(text(web, "[data-testid=user]").await, format!("👤 {looker}"));
    }
    web.goto(&format!("{}/", lab.url())).await.unwrap();
    assert_eq!(fill_until_the_wall(web).await, fitted, "nine looks moved the wall");
    browser.stop().await;
    lab.shutdown().await;
}

/// Adds products from the catalog, one of each, until a page is an error page; the lines that
/// fitted. (Products 1 and 5 are in the cart already: `sign_up_and_fill_the_cart`.)
async fn fill_until_the_wall(web: &WebDriver) -> usize {
    let mut in_cart = 2;
    for id in (2..).filter(|id| *id != 5) {
        let button = format!("article[data-product-id='{id}'] button");
        if web.find(Locator::Css(&button)).await.is_err() {
            panic!("the catalog ended before the wall, at {in_cart} lines");
        }
        click(web, &button).await;
        if web.find(Locator::Css(".error-page")).await.is_ok() {
            assert_eq!(find(web, ".error-page").await.attr("data-status").await.unwrap().as_deref(), Some("413"));
            return in_cart;
        }
        in_cart += 1;
        assert_eq!(cart_badge(web).await, in_cart.to_string(), "line {id}");
    }
    unreachable!("the ids never end")
}

/// A Redis outage in Chromium: the pages that need the session say the store is down and that
/// they cannot tell who you are (not a guest); the dashboard stays up, shows the store down, and
/// turns it back to up by itself when Redis returns, with the session intact.
#[tokio::test]
async fn redis_down_the_dashboard_stays_up_and_no_page_draws_you_as_a_guest() {
    let lab = spawn_lab_with(LabConfig::new(Backend::Redis, env!("CARGO_BIN_EXE_sessionlab").into())).await;
    let browser = Browser::start().await;
    let web = browser.web();
    let name = sign_up_and_fill_the_cart(web, lab.url()).await;
    lab.set_store_running(false).await.unwrap();

    web.goto(&format!("{}/cart", lab.url())).await.unwrap();
    assert_eq!(text(web, ".error-page h1").await, "Session store unavailable");
    assert!(text(web, "[data-testid=session-unknown]").await.contains("unknown"));
    assert!(web.find(Locator::Css("a[href='/login']")).await.is_err(), "the 503 page drew a guest");

    web.goto(&format!("{}/lab", lab.url())).await.unwrap();
    assert_eq!(text(web, "[data-testid=store-state]").await, "down");
    assert!(text(web, "[data-testid=session-unknown-panel]").await.contains("cannot tell who you are"));
    live_view_says(web, "unknown").await;

    lab.set_store_running(true).await.unwrap();
    for _ in 0..50 {
        if text(web, "[data-testid=store-state]").await == "up" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(text(web, "[data-testid=store-state]").await, "up", "the live view never saw Redis back");
    live_view_says(web, &format!("logged in as {name}, 2 item(s)")).await;
    browser.stop().await;
    lab.shutdown().await;
}

/// The admin token in Chromium: the form says where to find it (compose and the lab), a wrong
/// one leads back to the form with a word of why, and the right one then opens the buttons.
#[tokio::test]
async fn a_wrong_admin_token_is_a_second_try_and_the_form_says_where_to_look() {
    let lab = spawn_lab_with(LabConfig::new(Backend::Cookie, env!("CARGO_BIN_EXE_sessionlab").into())).await;
    let browser = Browser::start().await;
    let web = browser.web();
    web.goto(&format!("{}/lab", lab.url())).await.unwrap();
    let hint = text(web, "[data-testid=token-hint]").await;
    assert!(hint.contains("docker compose exec app1") && hint.contains("jq -r .admin_token"), "{hint}");
    fill(web, "[data-testid=admin-token]", "lab-not-the-token").await;
    click(web, "[data-testid=unlock-button]").await;
    assert!(text(web, "[data-testid=notice]").await.contains("That is not the admin token"));
    assert!(web.find(Locator::Css("[data-testid^=kill-]")).await.is_err(), "a wrong token opened the buttons");
    unlock(web, lab.admin_token()).await;
    browser.stop().await;
    lab.shutdown().await;
}

/// The README's pictures: the catalog, the cart, the inspector and the dashboard of a logged-in
/// user with two products, written where `SESSIONLAB_SCREENSHOTS` says (else a temporary
/// directory, so that every run checks they can be made).
async fn take_screenshots(web: &WebDriver, lab: &Lab) {
    let keep = std::env::var_os(SCREENSHOTS_ENV).map(PathBuf::from);
    let scratch = tempfile::tempdir().unwrap();
    let dir = keep.clone().unwrap_or_else(|| scratch.path().to_owned());
    std::fs::create_dir_all(&dir).unwrap();
    for (page, file) in [("/", "catalog.png"), ("/cart", "cart.png"), ("/session", "session.png"), ("/lab", "lab.png")]
    {
        web.goto(&format!("{}{page}", lab.url())).await.unwrap();
        if page == "/lab" {
            unlock(web, lab.admin_token()).await;
            // A few seconds of the strip: the polls, coloured by replica.
            tokio::time::sleep(Duration::from_secs(4)).await;
        }
        save_screenshot(web, &dir.join(file)).await;
    }
    if let Some(dir) = keep {
        println!("screenshots written to {}", dir.display());
    }
}

async fn save_screenshot(web: &WebDriver, path: &Path) {
    let png = web.screenshot().await.unwrap();
    assert!(png.starts_with(b"\x89PNG") && png.len() > 10_000, "{}: {} bytes", path.display(), png.len());
    std::fs::write(path, png).unwrap();
}
