-- quire registry, schema version 4: feedback on answered requests (issue 16), keyed as the
-- redb registry keys it (alias, time_us, request_id). Bodies are the same JSON redb stores.
-- Retention deletes by time.

CREATE TABLE feedback (
    alias text COLLATE "C" NOT NULL,
    time_us bigint NOT NULL CHECK (time_us >= 0),
    request_id text COLLATE "C" NOT NULL,
    body jsonb NOT NULL,
    PRIMARY KEY (alias, time_us, request_id)
);
CREATE INDEX feedback_by_time ON feedback (time_us);
