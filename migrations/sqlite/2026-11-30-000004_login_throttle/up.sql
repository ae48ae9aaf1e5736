-- Failed log-ins, counted per username and per client address across every replica.
CREATE TABLE login_throttle (
    key         TEXT PRIMARY KEY,   -- 'user:<name>' or 'ip:<address>'
    failures    BIGINT NOT NULL,
    window_ends BIGINT NOT NULL     -- Unix seconds; the count starts over after this
);
