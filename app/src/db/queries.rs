use diesel::{OptionalExtension, QueryDsl, RunQueryDsl, prelude::*, result::DatabaseErrorKind};

use super::{
    DbConnection,
    schema::{products, users},
};
use crate::catalog::Product;

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = users)]
pub struct UserRow {
    pub id: i64,
    pub username: String,
    pub password_hash: String,
}

pub fn find_user(conn: &mut DbConnection, username: &str) -> QueryResult<Option<UserRow>> {
    users::table.filter(users::username.eq(username)).select(UserRow::as_select()).first(conn).optional()
}

/// `Ok(None)` when the username is taken.
pub fn insert_user(
    conn: &mut DbConnection,
    username: &str,
    password_hash: &str,
    now: i64,
) -> QueryResult<Option<UserRow>> {
    let inserted = diesel::insert_into(users::table)
        .values((users::username.eq(username), users::password_hash.eq(password_hash), users::created_at.eq(now)))
        .execute(conn);
    match inserted {
        Err(diesel::result::Error::DatabaseError(DatabaseErrorKind::UniqueViolation, _)) => Ok(None),
        Err(other) => Err(other),
        Ok(_) => find_user(conn, username),
    }
}

pub fn set_password_hash(conn: &mut DbConnection, user_id: i64, password_hash: &str) -> QueryResult<()> {
    diesel::update(users::table.find(user_id)).set(users::password_hash.eq(password_hash)).execute(conn).map(drop)
}

pub fn load_products(conn: &mut DbConnection) -> QueryResult<Vec<Product>> {
    products::table
        .order(products::id)
        .select((products::id, products::name, products::emoji, products::price_cents))
        .load::<(i32, String, String, i64)>(conn)
        .map(|rows| {
            rows.into_iter().map(|(id, name, emoji, price_cents)| Product { id, name, emoji, price_cents }).collect()
        })
}

pub fn ping(conn: &mut DbConnection) -> QueryResult<()> {
    diesel::sql_query("SELECT 1").execute(conn).map(drop)
}
