use actix_web::{HttpResponse, http::StatusCode, web};
use askama::Template;
use serde::Deserialize;

use super::{Layout, html, money, see_other};
use crate::{
    catalog::Catalog,
    error::AppError,
    routes::{cart_ops, csrf::CsrfToken},
    session::{Session, idempotency::IdempotencyKey},
    startup::AppInfo,
};

struct ProductCard {
    id: i32,
    name: String,
    emoji: String,
    price: String,
    /// The product the last "Add to cart" added: its button gets the focus back.
    just_added: bool,
}

#[derive(Template)]
#[template(path = "catalog.html")]
struct CatalogPage {
    layout: Layout,
    products: Vec<ProductCard>,
    /// The status line after "Add to cart".
    added: Option<String>,
}

/// `/?added=ID`, where "Add to cart" sends the browser back: the page says what happened and
/// gives the keyboard focus back to the button that was pressed, instead of starting over at
/// the top of a page of sixty buttons. Read as text: a link with anything else in it is just the
/// catalog, not a 400.
#[derive(Deserialize)]
pub struct CatalogQuery {
    added: Option<String>,
}

pub async fn catalog(
    info: web::Data<AppInfo>,
    session: Session,
    csrf: CsrfToken,
    catalog: web::Data<Catalog>,
    query: web::Query<CatalogQuery>,
) -> Result<HttpResponse, AppError> {
    let added = query.added.as_deref().and_then(|id| id.parse().ok()).and_then(|id| catalog.get(id));
    let products = catalog
        .all()
        .map(|p| ProductCard {
            id: p.id,
            name: p.name.clone(),
            emoji: p.emoji.clone(),
            price: money(p.price_cents),
            just_added: added.is_some_and(|a| a.id == p.id),
        })
        .collect();
    // Said from the session this request carries, not from the redirect's promise: if the
    // session was lost in between (a killed sticky replica), the page says so.
    let added = added.map(|product| {
        let qty = session.read(|d| d.cart.lines().iter().find(|l| l.product_id == product.id).map(|l| l.qty));
        match qty {
            Some(qty) => format!("Added {} {}: {qty} in your cart.", product.emoji, product.name),
            None => format!(
                "{} {} is not in your cart any more: the session this request carries is not the one it was \
                 added to. The Session page shows what this replica sees.",
                product.emoji, product.name
            ),
        }
    });
    html(StatusCode::OK, &CatalogPage { layout: Layout::new(&info, &session, &csrf), products, added })
}

struct LineView {
    product_id: i32,
    emoji: String,
    name: String,
    qty: u32,
    price: String,
    subtotal: String,
}

#[derive(Template)]
#[template(path = "cart.html")]
struct CartPage {
    layout: Layout,
    lines: Vec<LineView>,
    total: String,
}

pub async fn cart(
    info: web::Data<AppInfo>,
    session: Session,
    csrf: CsrfToken,
    catalog: web::Data<Catalog>,
) -> Result<HttpResponse, AppError> {
    let (lines, total) = session.read(|d| {
        let lines = d
            .cart
            .lines()
            .iter()
            .map(|l| LineView {
                product_id: l.product_id,
                emoji: catalog.get(l.product_id.into()).map_or_else(String::new, |p| p.emoji.clone()),
                name: l.name.clone(),
                qty: l.qty,
                price: money(l.price_cents),
                subtotal: money(l.price_cents * i64::from(l.qty)),
            })
            .collect();
        (lines, money(d.cart.total_cents()))
    });
    html(StatusCode::OK, &CartPage { layout: Layout::new(&info, &session, &csrf), lines, total })
}

#[derive(Deserialize)]
pub struct CartForm {
    csrf: String,
    product_id: i64,
    #[serde(default = "one", deserialize_with = "quantity")]
    qty: i64,
    /// Where to go back to: the catalog or the cart, nothing else (no open redirect).
    #[serde(default)]
    back: Option<String>,
    /// A fresh key in every rendered form: submitting the same form twice (a double click, a
    /// resubmission after "back") changes the cart once.
    #[serde(default)]
    idempotency_key: Option<String>,
}

impl CartForm {
    fn key(&self) -> Result<Option<IdempotencyKey>, AppError> {
        Ok(self.idempotency_key.as_deref().map(IdempotencyKey::parse).transpose()?)
    }
}

fn one() -> i64 {
    1
}

/// The quantity box as a person fills it: an empty or wordy entry is explained in their terms,
/// not as the parser's "cannot parse integer from empty string".
fn quantity<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<i64, D::Error> {
    let raw = String::deserialize(deserializer)?;
    raw.trim().parse().map_err(|_| {
        serde::de::Error::custom(format!(
            "enter the quantity as a whole number from 1 to {} (the form sent {raw:?})",
            crate::cart::MAX_QTY_PER_LINE
        ))
    })
}

fn back_to(form: &CartForm, default: &'static str) -> &'static str {
    match form.back.as_deref() {
        Some("/") => "/",
        Some("/cart") => "/cart",
        _ => default,
    }
}

pub async fn add(
    session: Session,
    csrf: CsrfToken,
    catalog: web::Data<Catalog>,
    form: web::Form<CartForm>,
) -> Result<HttpResponse, AppError> {
    csrf.verify(&form.csrf)?;
    cart_ops::add(&session, &catalog, form.product_id, form.qty, form.key()?.as_ref()).await?;
    Ok(match back_to(&form, "/") {
        // No #fragment: a page with one skips autofocus (HTML's "flush autofocus candidates").
        "/" => see_other(&format!("/?added={}", form.product_id)),
        back => see_other(back),
    })
}

pub async fn update(
    session: Session,
    csrf: CsrfToken,
    catalog: web::Data<Catalog>,
    form: web::Form<CartForm>,
) -> Result<HttpResponse, AppError> {
    csrf.verify(&form.csrf)?;
    if form.qty == 0 {
        cart_ops::remove(&session, &catalog, form.product_id, form.key()?.as_ref()).await?;
    } else {
        cart_ops::set_qty(&session, &catalog, form.product_id, form.qty, form.key()?.as_ref()).await?;
    }
    Ok(see_other(back_to(&form, "/cart")))
}

pub async fn remove(
    session: Session,
    csrf: CsrfToken,
    catalog: web::Data<Catalog>,
    form: web::Form<CartForm>,
) -> Result<HttpResponse, AppError> {
    csrf.verify(&form.csrf)?;
    cart_ops::remove(&session, &catalog, form.product_id, form.key()?.as_ref()).await?;
    Ok(see_other(back_to(&form, "/cart")))
}
