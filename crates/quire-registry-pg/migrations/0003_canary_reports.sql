-- quire registry, schema version 3: canary evaluation reports (issue 16), keyed as the redb
-- registry keys them (alias, created_us, report_id). Bodies are the same JSON redb stores.
-- Retention deletes by time.

CREATE TABLE canary_reports (
    alias text COLLATE "C" NOT NULL,
    created_us bigint NOT NULL CHECK (created_us >= 0),
    report_id text COLLATE "C" NOT NULL,
    body jsonb NOT NULL,
    PRIMARY KEY (alias, created_us, report_id)
);
CREATE INDEX canary_reports_by_time ON canary_reports (created_us);
