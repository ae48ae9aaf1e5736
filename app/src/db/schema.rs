// Written by hand to match migrations/; every engine shares these types.
diesel::table! {
    users (id) {
        id -> BigInt,
        username -> Text,
        password_hash -> Text,
        created_at -> BigInt,
    }
}

diesel::table! {
    products (id) {
        id -> Integer,
        name -> Text,
        emoji -> Text,
        price_cents -> BigInt,
    }
}

diesel::table! {
    sessions (id) {
        id -> Text,
        state -> Text,
        version -> BigInt,
        user_id -> Nullable<BigInt>,
        created_at -> BigInt,
        updated_at -> BigInt,
        expires_at -> BigInt,
    }
}

diesel::table! {
    revoked_sessions (sid) {
        sid -> Text,
        expires_at -> BigInt,
        not_before -> Nullable<BigInt>,
        exempt -> Nullable<Text>,
    }
}

diesel::table! {
    session_registry (sid) {
        sid -> Text,
        user_id -> BigInt,
        device -> Text,
        created_at -> BigInt,
        expires_at -> BigInt,
        held_by -> Nullable<Text>,
        held_since -> Nullable<BigInt>,
    }
}

diesel::table! {
    jwt_refresh_families (sid) {
        sid -> Text,
        current_jti -> Text,
        expires_at -> BigInt,
        previous_jti -> Nullable<Text>,
        successor -> Nullable<Text>,
        grace_until -> Nullable<BigInt>,
    }
}

diesel::table! {
    login_throttle (key) {
        key -> Text,
        failures -> BigInt,
        window_ends -> BigInt,
    }
}

diesel::table! {
    replica_starts (replica) {
        replica -> Text,
        started_at -> BigInt,
    }
}
