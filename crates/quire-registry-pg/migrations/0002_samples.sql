-- quire registry, schema version 2: sampled Retrieve requests (issue 16), ordered per alias by
-- time as the redb registry's (alias, time_us, request_id) key orders them. Bodies are the same
-- JSON redb stores. Retention deletes by time.

CREATE TABLE samples (
    alias text COLLATE "C" NOT NULL,
    time_us bigint NOT NULL CHECK (time_us >= 0),
    request_id text COLLATE "C" NOT NULL,
    body jsonb NOT NULL,
    PRIMARY KEY (alias, time_us, request_id)
);
CREATE INDEX samples_by_time ON samples (time_us);
