// Written by hand to match migrations/{postgres,sqlite}; the two engines share these types.
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
