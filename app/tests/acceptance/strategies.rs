//! The backend matrix: every strategy (and each stateless one without its revocation layer) runs
//! every scenario of `suite/`.
macro_rules! acceptance_suite {
    ($module:ident, $backend:expr, [$($extra:ident),* $(,)?]) => {
        mod $module {
            use sessionlab::session::Backend;
            use crate::suite;

            acceptance_suite!(@tests $backend,
                a_logged_in_cart_is_the_same_on_every_replica,
                killing_the_serving_replica,
                bad_session_cookies_are_no_session,
                login_renews_the_session_id,
                logout_destroys_the_session,
                a_cart_too_big_for_a_cookie,
                the_json_api_keeps_its_contract,
                pages_forms_and_logs,
                concurrent_adds_lose_nothing,
                idle_and_absolute_timeouts,
                bad_input_is_a_clear_4xx_and_changes_nothing,
                your_devices_lists_and_revokes_on_every_replica,
                a_password_change_ends_other_sessions_and_renews_the_id
                $(, $extra)*
            );
        }
    };
    (@tests $backend:expr, $($scenario:ident),*) => {
        $(
            #[tokio::test]
            async fn $scenario() {
                suite::$scenario($backend).await;
            }
        )*
    };
}

/// `memory` is the problem, not a solution: the scenarios above assume a session that lasts from
/// one request to the next, which is exactly what it breaks. It runs its own, which assert the
/// failure the article starts from and that the balancing, not the store, causes it.
mod memory {
    use sessionlab::session::Backend;

    use crate::{dashboard, harness::spawn_lab, suite};

    #[tokio::test]
    async fn most_logged_in_requests_find_no_session() {
        let lab = spawn_lab(Backend::Memory).await;
        suite::most_logged_in_requests_find_no_session(&lab).await;
        lab.shutdown().await;
    }

    /// `SESSION_REVOCATION=off`: no revocation list and no "your devices", and the same failure.
    #[tokio::test]
    async fn without_the_revocation_layer_most_logged_in_requests_find_no_session_too() {
        let lab = spawn_lab(crate::harness::Mode::pure(Backend::Memory)).await;
        suite::most_logged_in_requests_find_no_session(&lab).await;
        lab.shutdown().await;
    }

    /// With two replicas drained, every request reaches the third and `memory` works: a single
    /// server was never the problem. Back in rotation, the session is lost again two times in three.
    #[tokio::test]
    async fn with_one_replica_in_rotation_memory_works() {
        use reqwest::StatusCode;

        use crate::harness::{Client, username};

        let lab = spawn_lab(Backend::Memory).await;
        let admin = dashboard::unlocked(lab.url(), lab.admin_token()).await;
        for id in ["app2", "app3"] {
            assert_eq!(dashboard::control(&admin, id, "drain").await.status, StatusCode::SEE_OTHER);
            dashboard::wait_for_state(&admin, id, "draining").await;
        }
        let client = Client::new(lab.url());
        client.register_and_login(&username("alone")).await;
        client.add(2, 3).await;
        for _ in 0..9 {
            let (cart, items) = client.cart().await;
            assert_eq!((cart.replica.as_str(), items), ("app1", vec![(2, 3)]));
            assert_eq!(client.get("/api/me").await.status, StatusCode::OK);
        }
        for id in ["app2", "app3"] {
            assert_eq!(dashboard::control(&admin, id, "ready").await.status, StatusCode::SEE_OTHER);
            dashboard::wait_for_state(&admin, id, "up").await;
        }
        let mut missing = 0;
        for _ in 0..9 {
            let me = client.get("/api/me").await;
            assert_eq!(me.status == StatusCode::OK, me.replica == "app1", "{}: {}", me.replica, me.status);
            missing += usize::from(me.status == StatusCode::UNAUTHORIZED);
        }
        assert!(missing >= 3, "back to round robin, the session is missing again: {missing} of 9");
        lab.shutdown().await;
    }
}

acceptance_suite!(
    sticky,
    Backend::Sticky,
    [sticky_pins_each_client_and_spreads_new_ones, sessions_of_a_killed_replica_leave_the_list]
);
// The article's other affinity: a hash of the client's address. Every test client comes from
// 127.0.0.1, so all of them share one replica (`affinity.rs` shows what that costs).
acceptance_suite!(
    sticky_by_address,
    crate::harness::Mode::by_address(Backend::Sticky),
    [sessions_of_a_killed_replica_leave_the_list]
);
acceptance_suite!(cookie, Backend::Cookie, []);
acceptance_suite!(
    redis,
    Backend::Redis,
    [
        a_store_restart,
        a_store_outage_is_a_clear_503_and_heals_by_itself,
        keyed_posts_through_a_kill_happen_exactly_once
    ]
);
acceptance_suite!(
    memcached,
    Backend::Memcached,
    [
        a_store_restart,
        a_store_outage_is_a_clear_503_and_heals_by_itself,
        keyed_posts_through_a_kill_happen_exactly_once
    ]
);
acceptance_suite!(
    postgres,
    Backend::Postgres,
    [
        a_store_restart,
        a_store_outage_is_a_clear_503_and_heals_by_itself,
        keyed_posts_through_a_kill_happen_exactly_once
    ]
);
acceptance_suite!(
    mysql,
    Backend::Mysql,
    [
        a_store_restart,
        a_store_outage_is_a_clear_503_and_heals_by_itself,
        keyed_posts_through_a_kill_happen_exactly_once
    ]
);
acceptance_suite!(jwt, Backend::Jwt, []);

// The stateless strategies once more as their pure forms, without their revocation
// layer (`SESSION_REVOCATION=off`): the same scenarios, where a logged-out copy keeps working
// and "your devices" says it cannot exist. `pure.rs` measures what that saves.
acceptance_suite!(
    sticky_pure,
    crate::harness::Mode::pure(Backend::Sticky),
    [sticky_pins_each_client_and_spreads_new_ones]
);
acceptance_suite!(cookie_pure, crate::harness::Mode::pure(Backend::Cookie), []);
acceptance_suite!(jwt_pure, crate::harness::Mode::pure(Backend::Jwt), []);

/// The stock actix stack runs the scenarios that apply to it; what it cannot do by design
/// (compare-and-set, a 413 at the cookie wall, "your devices", a 503 page) is asserted in
/// `stock.rs` as the documented failure.
macro_rules! stock_suite {
    ($module:ident, $backend:expr, [$($scenario:ident),* $(,)?]) => {
        mod $module {
            use sessionlab::session::Backend;
            use crate::suite;

            acceptance_suite!(@tests $backend,
                a_logged_in_cart_is_the_same_on_every_replica,
                killing_the_serving_replica,
                bad_session_cookies_are_no_session,
                login_renews_the_session_id,
                logout_destroys_the_session,
                concurrent_adds_lose_nothing,
                idle_and_absolute_timeouts,
                bad_input_is_a_clear_4xx_and_changes_nothing
                $(, $scenario)*
            );
        }
    };
}

stock_suite!(actix_redis, Backend::ActixRedis, [a_store_restart]);
stock_suite!(actix_cookie, Backend::ActixCookie, []);
