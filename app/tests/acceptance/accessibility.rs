//! Phones and keyboards, in Debian's Chromium: at a phone's width (390 CSS pixels) every page
//! fits the screen and passes axe-core's WCAG 2.1 A and AA rules, and the shop works from the
//! keyboard alone: a skip link, a visible focus ring, and the focus back on the button after
//! "Add to cart".
//!
//! axe-core is the engine browsers' own accessibility panels build on; `scripts/install-deps.sh`
//! fetches it (pinned) into `target/tools/axe.min.js`, or `SESSIONLAB_AXE` names another copy.
//! WebDriver runs it in the page as the browser's own script, so the pages' CSP stays as it is.
use std::path::{Path, PathBuf};

use fantoccini::{Client as WebDriver, Locator};
use serde_json::json;
use sessionlab::{lab::LabConfig, session::Backend};

use crate::{
    browser::{Browser, cart_badge, click, open_the_dashboard, text, until_the_next_page},
    harness::{spawn_lab_with, username},
};

const AXE_ENV: &str = "SESSIONLAB_AXE";
const PHONE: (u32, u32) = (390, 844);
/// WebDriver's code points for the keys.
const TAB: &str = "\u{e004}";
const ENTER: &str = "\u{e007}";

fn axe_source() -> String {
    let path = std::env::var_os(AXE_ENV)
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/tools/axe.min.js"));
    std::fs::read_to_string(&path)
        .unwrap_or_else(|err| panic!("{}: {err} (scripts/install-deps.sh fetches axe-core)", path.display()))
}

/// What is wrong with the page on screen: content wider than the screen, and each axe-core
/// violation with the elements it found.
async fn problems(web: &WebDriver, axe: &str, page: &str) -> Vec<String> {
    let mut found = Vec::new();
    let widths = web.execute("return [document.documentElement.scrollWidth, window.innerWidth]", vec![]).await.unwrap();
    let (content, screen) = (widths[0].as_u64().unwrap(), widths[1].as_u64().unwrap());
    assert!(screen <= u64::from(PHONE.0) + 10, "the window is {screen} px wide, not a phone's");
    if content > screen {
        found.push(format!("{page}: {content} px of content on a {screen} px screen"));
    }
    web.execute(axe, vec![]).await.unwrap();
    let run = r#"
        const done = arguments[arguments.length - 1];
        axe.run(document, { runOnly: { type: "tag", values: ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"] } })
          .then(result => done(result.violations.map(v =>
            v.id + " (" + v.impact + "): " + v.help + " at " + v.nodes.slice(0, 4).map(n => n.target.join(" ")).join(", "))))
          .catch(err => done(["axe failed: " + err]));
    "#;
    let violations = web.execute_async(run, vec![]).await.unwrap();
    found.extend(violations.as_array().unwrap().iter().map(|v| format!("{page}: {}", v.as_str().unwrap())));
    found
}

async fn active(web: &WebDriver, attribute: &str) -> String {
    let element = web.active_element().await.unwrap();
    element.attr(attribute).await.unwrap().unwrap_or_default()
}

async fn press(web: &WebDriver, key: &str) {
    web.active_element().await.unwrap().send_keys(key).await.unwrap();
}

#[tokio::test]
async fn on_a_phone_every_page_fits_and_passes_axe_core() {
    let axe = axe_source();
    let lab = spawn_lab_with(LabConfig::new(Backend::Redis, env!("CARGO_BIN_EXE_sessionlab").into())).await;
    let browser = Browser::start().await;
    let web = browser.web();
    web.set_window_size(PHONE.0, PHONE.1).await.unwrap();
    let url = lab.url();

    // Signed up from a phone, which capitalises the first letter: the account is lower case.
    let name = username("phone");
    web.goto(&format!("{url}/register")).await.unwrap();
    let field = web.find(Locator::Css("input[name=username]")).await.unwrap();
    assert_eq!(field.attr("autocapitalize").await.unwrap().as_deref(), Some("none"));
    field.send_keys(&format!("{}{}", name[..1].to_uppercase(), &name[1..])).await.unwrap();
    web.find(Locator::Css("input[name=password]")).await.unwrap().send_keys(&format!("pw-{name}-long")).await.unwrap();
    click(web, "form[action='/register'] button[type=submit]").await;
    assert_eq!(text(web, "[data-testid=user]").await, format!("👤 {name}"));
    click(web, "article[data-product-id='3'] button").await;

    let mut found = Vec::new();
    for page in ["/", "/?added=3", "/cart", "/session", "/devices", "/docs/redis", "/no/such/page"] {
        web.goto(&format!("{url}{page}")).await.unwrap();
        found.extend(problems(web, &axe, page).await);
    }
    // The dashboard with every state a replica shows: up, draining, and app4 out of rotation.
    open_the_dashboard(web, url, lab.admin_token()).await;
    click(web, "[data-testid=drain-app2]").await;
    assert!(text(web, "[data-testid=state-app2]").await.contains("DRAIN"), "app2 drains");
    found.extend(problems(web, &axe, "/lab").await);
    click(web, "[data-testid=ready-app2]").await;
    click(web, "form[action='/logout'] button").await;
    for page in ["/login", "/register"] {
        web.goto(&format!("{url}{page}")).await.unwrap();
        found.extend(problems(web, &axe, page).await);
    }
    assert!(found.is_empty(), "{} problem(s):\n{}", found.len(), found.join("\n"));
    browser.stop().await;
    lab.shutdown().await;
}

#[tokio::test]
async fn the_shop_works_from_the_keyboard() {
    let lab = spawn_lab_with(LabConfig::new(Backend::Redis, env!("CARGO_BIN_EXE_sessionlab").into())).await;
    let browser = Browser::start().await;
    let web = browser.web();
    web.goto(lab.url()).await.unwrap();

    // The first Tab reaches the skip link, and following it puts the next Tab in the catalog.
    press(web, TAB).await;
    assert_eq!(active(web, "href").await, "#main");
    press(web, ENTER).await;
    press(web, TAB).await;
    let first = active(web, "aria-label").await;
    assert!(first.starts_with("Add to cart: "), "the next Tab after the skip link: {first:?}");

    // Every "Add to cart" button says which product it adds.
    let mut names = Vec::new();
    for button in web.find_all(Locator::Css(".product button")).await.unwrap() {
        names.push(button.attr("aria-label").await.unwrap().unwrap_or_default());
    }
    let unique: std::collections::HashSet<_> = names.iter().collect();
    assert!(names.len() > 10 && unique.len() == names.len(), "{names:?}");

    // Tab to the third product and add it with Enter: the page comes back with a status line and
    // the focus where it was.
    let third = names[2].clone();
    while active(web, "aria-label").await != third {
        press(web, TAB).await;
    }
    let old_page = web.find(Locator::Css("html")).await.unwrap();
    press(web, ENTER).await;
    assert!(until_the_next_page(web, old_page).await, "Enter on {third} led nowhere");
    assert_eq!(active(web, "aria-label").await, third, "the focus is back on the button");
    let status = text(web, "[data-testid=added]").await;
    assert!(status.starts_with("Added ") && status.contains(": 1 in your cart"), "{status}");
    assert_eq!(cart_badge(web).await, "1");

    // The focus ring is drawn on every control of the cart page, the outlined buttons included.
    web.goto(&format!("{}/cart", lab.url())).await.unwrap();
    let ring = r#"
        const style = getComputedStyle(arguments[0]);
        return [style.outlineStyle, parseFloat(style.outlineWidth)];
    "#;
    let mut seen = Vec::new();
    for _ in 0..30 {
        press(web, TAB).await;
        let focused = web.active_element().await.unwrap();
        let class = focused.attr("class").await.unwrap().unwrap_or_default();
        let outline = web.execute(ring, vec![json!(focused)]).await.unwrap();
        assert!(outline[0] == "solid" && outline[1].as_f64() >= Some(2.0), "{class:?}: {outline}");
        seen.push(class);
        if seen.len() > 3 && focused.attr("href").await.unwrap().as_deref() == Some("/lab") {
            break;
        }
    }
    assert!(seen.iter().any(|class| class.contains("outline")), "reached an outlined button: {seen:?}");

    // On a desktop screen nothing scrolls sideways: the dashboard's buttons are all in view.
    open_the_dashboard(web, lab.url(), lab.admin_token()).await;
    let clipped = r#"
        return [...document.querySelectorAll(".overflow-auto")]
          .filter(box => box.scrollWidth > box.clientWidth)
          .map(box => box.firstElementChild.className);
    "#;
    assert_eq!(web.execute(clipped, vec![]).await.unwrap(), json!([]), "tables that scroll at 1280 px");
    browser.stop().await;
    lab.shutdown().await;
}
