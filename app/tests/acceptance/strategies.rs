//! The backend matrix: every strategy runs every scenario of `suite.rs`.
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

acceptance_suite!(sticky, Backend::Sticky, [sticky_pins_each_client_and_spreads_new_ones]);
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
