//! The JSON API: a stable contract for tests, benchmarks and outside tools (see README).
use actix_web::{HttpResponse, web};
use serde::Deserialize;
use serde_json::json;

use super::{cart_ops, inspect::inspect};
use crate::{catalog::Catalog, db::Db, error::AppError, session::Session, startup::AppInfo, users};

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/register", web::post().to(register))
        .route("/login", web::post().to(login))
        .route("/logout", web::post().to(logout))
        .route("/me", web::get().to(me))
        .route("/products", web::get().to(products))
        .route("/cart", web::get().to(cart))
        .route("/cart/items", web::post().to(add_item))
        .route("/cart/items/{product_id}", web::delete().to(remove_item))
        .route("/session", web::get().to(session_info));
}

#[derive(Deserialize)]
struct Credentials {
    username: String,
    password: String,
}

async fn register(db: web::Data<Db>, session: Session, body: web::Json<Credentials>) -> Result<HttpResponse, AppError> {
    let user = users::register(&db, &body.username, &body.password).await?;
    let name = user.username.clone();
    session.renew::<AppError>(|data| data.user = Some(user)).await?;
    Ok(HttpResponse::Created().json(json!({ "user": name })))
}

async fn login(db: web::Data<Db>, session: Session, body: web::Json<Credentials>) -> Result<HttpResponse, AppError> {
    let user = users::authenticate(&db, &body.username, &body.password).await?;
    let name = user.username.clone();
    session.renew::<AppError>(|data| data.user = Some(user)).await?;
    Ok(HttpResponse::Ok().json(json!({ "user": name })))
}

async fn logout(session: Session) -> Result<HttpResponse, AppError> {
    session.purge().await?;
    Ok(HttpResponse::NoContent().finish())
}

async fn me(session: Session, info: web::Data<AppInfo>) -> Result<HttpResponse, AppError> {
    let user = session.read(|data| data.user.as_ref().map(|u| u.username.clone())).ok_or(AppError::NotLoggedIn)?;
    Ok(HttpResponse::Ok().json(json!({ "user": user, "replica": info.replica, "backend": info.backend.as_str() })))
}

async fn products(catalog: web::Data<Catalog>) -> HttpResponse {
    HttpResponse::Ok().json(catalog.all().collect::<Vec<_>>())
}

async fn cart(session: Session) -> HttpResponse {
    HttpResponse::Ok().json(cart_ops::view(&session))
}

#[derive(Deserialize)]
struct AddItem {
    product_id: i64,
    qty: i64,
}

async fn add_item(
    session: Session,
    catalog: web::Data<Catalog>,
    body: web::Json<AddItem>,
) -> Result<HttpResponse, AppError> {
    cart_ops::add(&session, &catalog, body.product_id, body.qty).await?;
    Ok(HttpResponse::Ok().json(cart_ops::view(&session)))
}

async fn remove_item(
    session: Session,
    catalog: web::Data<Catalog>,
    path: web::Path<i64>,
) -> Result<HttpResponse, AppError> {
    cart_ops::remove(&session, &catalog, path.into_inner()).await?;
    Ok(HttpResponse::Ok().json(cart_ops::view(&session)))
}

async fn session_info(session: Session, info: web::Data<AppInfo>) -> Result<HttpResponse, AppError> {
    Ok(HttpResponse::Ok().json(inspect(&session, &info).await?))
}
