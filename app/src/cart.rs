//! The shopping cart: plain data that lives inside the session, whatever the backend.
use serde::{Deserialize, Serialize};

use crate::catalog::Product;

pub const MAX_QTY_PER_LINE: u32 = 99;

/// One line keeps the name and price the shopper saw when adding it, as real carts do. It is also
/// what makes the cart's size grow realistically with each product, so the 4 KB cookie wall is
/// reachable in the lab.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CartLine {
    pub product_id: i32,
    pub name: String,
    pub price_cents: i64,
    pub qty: u32,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Cart {
    lines: Vec<CartLine>,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CartError {
    #[error("quantity must be between 1 and {MAX_QTY_PER_LINE} per product (asked for {0})")]
    QtyOutOfRange(i64),
    #[error("the cart already holds {have} of this product; at most {MAX_QTY_PER_LINE} per product")]
    LineFull { have: u32 },
}

fn check_qty(qty: i64) -> Result<u32, CartError> {
    u32::try_from(qty).ok().filter(|q| (1..=MAX_QTY_PER_LINE).contains(q)).ok_or(CartError::QtyOutOfRange(qty))
}

impl Cart {
    pub fn lines(&self) -> &[CartLine] {
        &self.lines
    }

    pub fn is_empty(&self) -> bool {
        self.lines.is_empty()
    }

    /// Total number of items, for the badge.
    pub fn count(&self) -> u32 {
        self.lines.iter().map(|l| l.qty).sum()
    }

    pub fn total_cents(&self) -> i64 {
        self.lines.iter().map(|l| l.price_cents * i64::from(l.qty)).sum()
    }

    /// Adds `qty` (1..=99) of `product`; the line may not grow past [`MAX_QTY_PER_LINE`].
    pub fn add(&mut self, product: &Product, qty: i64) -> Result<(), CartError> {
        check_qty(qty)?;
        let current = self.line(product.id).map_or(0, |l| l.qty);
        if i64::from(current) + qty > i64::from(MAX_QTY_PER_LINE) {
            return Err(CartError::LineFull { have: current });
        }
        self.set_qty(product, i64::from(current) + qty)
    }

    /// Sets the line's quantity exactly (1..=99); use [`Cart::remove`] for zero.
    pub fn set_qty(&mut self, product: &Product, qty: i64) -> Result<(), CartError> {
        let qty = check_qty(qty)?;
        match self.lines.iter_mut().find(|l| l.product_id == product.id) {
            Some(line) => line.qty = qty,
            None => self.lines.push(CartLine {
                product_id: product.id,
                name: product.name.to_owned(),
                price_cents: product.price_cents,
                qty,
            }),
        }
        Ok(())
    }

    pub fn remove(&mut self, product_id: i32) {
        self.lines.retain(|l| l.product_id != product_id);
    }

    fn line(&self, product_id: i32) -> Option<&CartLine> {
        self.lines.iter().find(|l| l.product_id == product_id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn product(id: i32) -> Product {
        Product { id, name: "Apple".into(), emoji: "🍎".into(), price_cents: 150 }
    }

    #[test]
    fn adding_twice_sums_the_line_and_the_total() {
        let mut cart = Cart::default();
        cart.add(&product(1), 2).unwrap();
        cart.add(&product(1), 3).unwrap();
        cart.add(&product(2), 1).unwrap();
        assert_eq!(cart.lines().len(), 2);
        assert_eq!(cart.count(), 6);
        assert_eq!(cart.total_cents(), 900);
    }

    #[test]
    fn quantities_outside_one_to_ninety_nine_are_refused_and_change_nothing() {
        let mut cart = Cart::default();
        for qty in [0, -1, 100, i64::MAX, i64::MIN] {
            assert_eq!(cart.add(&product(1), qty), Err(CartError::QtyOutOfRange(qty)));
        }
        cart.add(&product(1), 98).unwrap();
        assert_eq!(cart.add(&product(1), 2), Err(CartError::LineFull { have: 98 }));
        assert_eq!(cart.count(), 98);
    }

    #[test]
    fn remove_drops_the_line() {
        let mut cart = Cart::default();
        cart.add(&product(1), 1).unwrap();
        cart.remove(1);
        assert!(cart.is_empty());
    }
}
