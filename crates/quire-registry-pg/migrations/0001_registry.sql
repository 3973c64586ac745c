-- quire registry, schema version 1: what the redb registry holds, one table per kind.
-- Keys are text COLLATE "C" so rows sort byte-wise, as redb's keys do. Bodies are the same
-- JSON the redb registry stores; audit records are the chain hash (32 bytes) followed by the
-- event's canonical bytes, exactly as quire-release seals them.

CREATE TABLE alias_revisions (
    alias text COLLATE "C" NOT NULL,
    revision bigint NOT NULL CHECK (revision >= 1),
    body jsonb NOT NULL,
    PRIMARY KEY (alias, revision)
);

CREATE TABLE pins (
    index_id text COLLATE "C" NOT NULL,
    holder text COLLATE "C" NOT NULL,
    body jsonb NOT NULL,
    PRIMARY KEY (index_id, holder)
);

CREATE TABLE manifests (
    index_id text COLLATE "C" PRIMARY KEY,
    content_digest text NOT NULL,
    body jsonb NOT NULL
);

CREATE TABLE eval_reports (
    report_id text COLLATE "C" PRIMARY KEY,
    body jsonb NOT NULL
);

CREATE TABLE audit_events (
    seq bigint PRIMARY KEY CHECK (seq >= 1),
    record bytea NOT NULL
);

-- The chain's head, one row: every change locks it (SELECT ... FOR UPDATE), which orders all
-- changes, and moves it in the same transaction as the change and its event.
CREATE TABLE audit_head (
    id boolean PRIMARY KEY DEFAULT true CHECK (id),
    seq bigint NOT NULL CHECK (seq >= 0),
    hash bytea NOT NULL CHECK (length(hash) = 32)
);
INSERT INTO audit_head (id, seq, hash) VALUES (true, 0, decode(repeat('00', 32), 'hex'));
