//! Cart changes, shared by the JSON API and the HTML forms. Each answers with the cart after the
//! change; with an `Idempotency-Key`, a repeat of the request gets that same answer back
//! (`replayed`) and changes nothing.
use serde::Serialize;

use crate::{
    catalog::Catalog,
    error::AppError,
    session::{Session, SessionData, idempotency::IdempotencyKey},
};

/// The cart after a change, and whether it is the recorded answer of an earlier, identical request.
pub struct Answer {
    pub cart: serde_json::Value,
    pub replayed: bool,
}

pub async fn add(
    session: &Session,
    catalog: &Catalog,
    product_id: i64,
    qty: i64,
    key: Option<&IdempotencyKey>,
) -> Result<Answer, AppError> {
    let product = catalog.get(product_id).ok_or(AppError::UnknownProduct(product_id))?;
    let request = format!("add {product_id} {qty}");
    changed(session.update_once(key, &request, |data| {
        data.cart.add(product, qty)?;
        Ok(view_json(data))
    }))
    .await
}

pub async fn set_qty(
    session: &Session,
    catalog: &Catalog,
    product_id: i64,
    qty: i64,
    key: Option<&IdempotencyKey>,
) -> Result<Answer, AppError> {
    let product = catalog.get(product_id).ok_or(AppError::UnknownProduct(product_id))?;
    let request = format!("set {product_id} {qty}");
    changed(session.update_once(key, &request, |data| {
        data.cart.set_qty(product, qty)?;
        Ok(view_json(data))
    }))
    .await
}

/// Removing what is not in the cart succeeds without a write.
pub async fn remove(
    session: &Session,
    catalog: &Catalog,
    product_id: i64,
    key: Option<&IdempotencyKey>,
) -> Result<Answer, AppError> {
    let product = catalog.get(product_id).ok_or(AppError::UnknownProduct(product_id))?;
    if !session.read(|data| data.cart.lines().iter().any(|l| l.product_id == product.id)) {
        return Ok(Answer { cart: session.read(view_json), replayed: false });
    }
    let request = format!("remove {product_id}");
    changed(session.update_once(key, &request, |data| {
        data.cart.remove(product.id);
        Ok(view_json(data))
    }))
    .await
}

async fn changed(
    update: impl Future<Output = Result<(serde_json::Value, bool), AppError>>,
) -> Result<Answer, AppError> {
    let (cart, replayed) = update.await?;
    Ok(Answer { cart, replayed })
}

#[derive(Debug, Serialize)]
pub struct CartView {
    pub items: Vec<CartItemView>,
    pub total_cents: i64,
}

#[derive(Debug, Serialize)]
pub struct CartItemView {
    pub product_id: i32,
    pub name: String,
    pub qty: u32,
    pub price_cents: i64,
}

pub fn view(session: &Session) -> CartView {
    session.read(view_of)
}

fn view_of(data: &SessionData) -> CartView {
    CartView {
        items: data
            .cart
            .lines()
            .iter()
            .map(|l| CartItemView {
                product_id: l.product_id,
                name: l.name.clone(),
                qty: l.qty,
                price_cents: l.price_cents,
            })
            .collect(),
        total_cents: data.cart.total_cents(),
    }
}

fn view_json(data: &SessionData) -> serde_json::Value {
    serde_json::to_value(view_of(data)).expect("a cart is plain JSON")
}
