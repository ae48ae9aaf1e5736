//! Property tests: whatever bytes arrive as a session cookie or token, every strategy decodes
//! them to "no session" or to a valid session — never a panic, never a store round trip for
//! garbage — and what a strategy encodes, it decodes back unchanged.
use std::{sync::Arc, time::Duration};

use actix_web::cookie::Key;
use proptest::prelude::*;
use sessionlab::{
    cart::Cart,
    catalog::seed_products,
    db::Db,
    session::{
        Backend, SessionData, SessionId, SessionStore, SessionUser, cookie::CookieStore, jwt::JwtStore,
        memcached::MemcachedStore, redis::RedisStore, redis_client::RedisClient, registry::Registry,
        revocable::Revocable, revocation::Revocations, sticky::MemoryStore,
    },
};

const TTL: Duration = Duration::from_secs(600);

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap()
}

/// Every strategy's store. The server-side ones point at a port where nothing listens: decoding
/// garbage must not need the server (it would answer "unavailable", not "no session").
fn stores(dir: &std::path::Path) -> Vec<Arc<dyn SessionStore>> {
    let db = Db::open(&format!("sqlite://{}", dir.join("db.sqlite3").display())).unwrap();
    runtime().block_on(sessionlab::db::prepare(&db, Vec::new())).unwrap(); // the revocation tables
    let jwt_key = ("k1".to_owned(), b"a-test-secret-that-is-at-least-32-bytes".to_vec());
    let jwt = Arc::new(JwtStore::new(vec![jwt_key], TTL, TTL, TTL).unwrap());
    vec![
        Arc::new(MemoryStore::new(Backend::Sticky, TTL)),
        Arc::new(CookieStore::new(Key::generate(), TTL)),
        Arc::new(RedisStore::new(RedisClient::connect("redis://127.0.0.1:1", 0).unwrap(), TTL, TTL)),
        Arc::new(MemcachedStore::connect("127.0.0.1:1", TTL).unwrap()),
        jwt.clone(),
        // The revocation layer asks its list only about a session the strategy found.
        Arc::new(Revocable::new(jwt, Registry::new(db.clone(), TTL), Revocations::Database(db), TTL)),
    ]
}

fn session_data() -> impl Strategy<Value = SessionData> {
    let products: Vec<_> = seed_products().collect();
    (
        proptest::option::of((1i64..1_000_000, "[a-z0-9_]{3,32}")),
        proptest::collection::vec((0..products.len(), 1i64..=99), 0..12),
        0i64..2_000_000_000,
    )
        .prop_map(move |(user, lines, created_at)| {
            let mut cart = Cart::default();
            for (index, qty) in lines {
                let _ = cart.set_qty(&products[index], qty);
            }
            SessionData {
                user: user.map(|(id, username)| SessionUser { id, username }),
                cart,
                created_at,
                ..SessionData::default()
            }
        })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn any_cookie_is_no_session_and_costs_no_store_round_trip(raw in any::<String>()) {
        let dir = tempfile::tempdir().unwrap();
        let stores = stores(dir.path());
        runtime().block_on(async {
            for store in &stores {
                let loaded = store.load(&raw).await;
                prop_assert!(matches!(loaded, Ok(None)), "{}: {:?}", store.backend(), loaded.map(|l| l.is_some()));
            }
            Ok(())
        })?;
    }

    #[test]
    fn cookie_shaped_garbage_is_no_session_too(raw in "[A-Za-z0-9_=+/.-]{0,600}") {
        let dir = tempfile::tempdir().unwrap();
        let stores = stores(dir.path());
        runtime().block_on(async {
            let needs_server = |s: &&Arc<dyn SessionStore>| matches!(s.backend(), Backend::Redis | Backend::Memcached);
            for store in stores.iter().filter(|s| SessionId::parse(&raw).is_none() || !needs_server(s)) {
                prop_assert!(matches!(store.load(&raw).await, Ok(None)), "{}", store.backend());
            }
            Ok(())
        })?;
    }

    #[test]
    fn any_bytes_as_stored_state_decode_or_are_refused(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
        let _ = SessionData::from_json(&bytes);
    }

    #[test]
    fn what_the_strategies_without_a_server_encode_they_decode_unchanged(data in session_data()) {
        let dir = tempfile::tempdir().unwrap();
        let stores = stores(dir.path());
        runtime().block_on(async {
            let client_side = [Backend::Cookie, Backend::Sticky, Backend::Jwt];
            for store in stores.iter().filter(|s| client_side.contains(&s.backend())) {
                let id = SessionId::generate();
                let saved = store.save(&id, &data, None).await.unwrap();
                let loaded = store.load(&saved.cookie).await.unwrap().expect("its own cookie");
                prop_assert_eq!(&loaded.data, &data);
                prop_assert_eq!(loaded.id, id);
            }
            Ok(())
        })?;
    }
}
