//! Cart changes, shared by the JSON API and the HTML forms.
use serde::Serialize;

use crate::{catalog::Catalog, error::AppError, session::Session};

pub async fn add(session: &Session, catalog: &Catalog, product_id: i64, qty: i64) -> Result<(), AppError> {
    let product = catalog.get(product_id).ok_or(AppError::UnknownProduct(product_id))?;
    session.update(|data| data.cart.add(product, qty).map_err(AppError::from)).await
}

pub async fn set_qty(session: &Session, catalog: &Catalog, product_id: i64, qty: i64) -> Result<(), AppError> {
    let product = catalog.get(product_id).ok_or(AppError::UnknownProduct(product_id))?;
    session.update(|data| data.cart.set_qty(product, qty).map_err(AppError::from)).await
}

/// Removing what is not in the cart succeeds without a write.
pub async fn remove(session: &Session, catalog: &Catalog, product_id: i64) -> Result<(), AppError> {
    let product = catalog.get(product_id).ok_or(AppError::UnknownProduct(product_id))?;
    if !session.read(|data| data.cart.lines().iter().any(|l| l.product_id == product.id)) {
        return Ok(());
    }
    session
        .update::<_, AppError>(|data| {
            data.cart.remove(product.id);
            Ok(())
        })
        .await
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
    session.read(|data| CartView {
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
    })
}
