-- `memory` and `sticky` keep a session in the memory of one replica's process, which a crash
-- takes away without a word to anyone. Each replica records when its process started, and each
-- registered session which process holds it: a session whose holder has started again since is
-- gone, and "your devices" must not list it as live.
CREATE TABLE replica_starts (
    replica    TEXT PRIMARY KEY NOT NULL,
    started_at BIGINT NOT NULL            -- Unix milliseconds
);
ALTER TABLE session_registry ADD COLUMN held_by TEXT;        -- NULL: not held by a replica
ALTER TABLE session_registry ADD COLUMN held_since BIGINT;   -- that replica's started_at
