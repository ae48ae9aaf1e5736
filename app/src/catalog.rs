//! The shop's products: seeded into the app database, loaded once per replica at start.
//!
//! Sixty products so that a cart of distinct lines can reach the 4 KB cookie wall in the lab.
use std::collections::BTreeMap;

use serde::Serialize;

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Product {
    pub id: i32,
    pub name: String,
    pub emoji: String,
    pub price_cents: i64,
}

/// The seed list: (name, emoji, price in cents). IDs are positions, starting at 1.
pub const SEED: &[(&str, &str, i64)] = &[
    ("Green Apple", "🍏", 79),
    ("Red Apple", "🍎", 79),
    ("Pear", "🍐", 99),
    ("Tangerine", "🍊", 59),
    ("Lemon", "🍋", 49),
    ("Banana", "🍌", 35),
    ("Watermelon", "🍉", 499),
    ("Grapes", "🍇", 299),
    ("Strawberries", "🍓", 349),
    ("Blueberries", "🫐", 399),
    ("Melon", "🍈", 329),
    ("Cherries", "🍒", 459),
    ("Peach", "🍑", 89),
    ("Mango", "🥭", 189),
    ("Pineapple", "🍍", 279),
    ("Coconut", "🥥", 229),
    ("Kiwi", "🥝", 45),
    ("Tomato", "🍅", 39),
    ("Eggplant", "🍆", 149),
    ("Avocado", "🥑", 129),
    ("Broccoli", "🥦", 169),
    ("Cucumber", "🥒", 69),
    ("Chili Pepper", "🌶️", 25),
    ("Bell Pepper", "🫑", 99),
    ("Corn", "🌽", 59),
    ("Carrot", "🥕", 19),
    ("Garlic", "🧄", 39),
    ("Onion", "🧅", 29),
    ("Potato", "🥔", 25),
    ("Sweet Potato", "🍠", 79),
    ("Mushrooms", "🍄", 219),
    ("Peanuts", "🥜", 259),
    ("Chestnuts", "🌰", 399),
    ("Bread", "🍞", 289),
    ("Croissant", "🥐", 129),
    ("Baguette", "🥖", 199),
    ("Flatbread", "🫓", 249),
    ("Pretzel", "🥨", 149),
    ("Bagel", "🥯", 119),
    ("Pancakes", "🥞", 399),
    ("Waffle", "🧇", 179),
    ("Cheese", "🧀", 549),
    ("Eggs", "🥚", 329),
    ("Butter", "🧈", 259),
    ("Honey", "🍯", 699),
    ("Milk", "🥛", 119),
    ("Coffee", "☕", 899),
    ("Tea", "🍵", 449),
    ("Rice", "🍚", 229),
    ("Spaghetti", "🍝", 169),
    ("Dumplings", "🥟", 549),
    ("Fortune Cookie", "🥠", 99),
    ("Cookie", "🍪", 149),
    ("Chocolate", "🍫", 249),
    ("Candy", "🍬", 89),
    ("Lollipop", "🍭", 69),
    ("Custard", "🍮", 229),
    ("Cupcake", "🧁", 299),
    ("Pie", "🥧", 899),
    ("Doughnut", "🍩", 159),
];

/// The products in id order, with lookup by id.
#[derive(Debug, Clone)]
pub struct Catalog {
    products: BTreeMap<i32, Product>,
}

impl Catalog {
    pub fn new(products: impl IntoIterator<Item = Product>) -> Self {
        Self { products: products.into_iter().map(|p| (p.id, p)).collect() }
    }

    pub fn all(&self) -> impl Iterator<Item = &Product> {
        self.products.values()
    }

    /// Takes any integer so an out-of-range id from a client is simply "not found".
    pub fn get(&self, id: i64) -> Option<&Product> {
        i32::try_from(id).ok().and_then(|id| self.products.get(&id))
    }
}

pub fn seed_products() -> impl Iterator<Item = Product> {
    SEED.iter().enumerate().map(|(i, (name, emoji, price_cents))| Product {
        id: i as i32 + 1,
        name: (*name).to_owned(),
        emoji: (*emoji).to_owned(),
        price_cents: *price_cents,
    })
}
