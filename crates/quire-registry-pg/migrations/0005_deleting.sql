-- quire registry, schema version 5: indices GC has marked for deletion across machines
-- (issue 15). GC marks first, waits at least two replica poll intervals, then deletes the
-- objects and removes the mark with the manifest; replicas fetch no marked index.

CREATE TABLE deleting (
    index_id text COLLATE "C" PRIMARY KEY,
    marked_us bigint NOT NULL CHECK (marked_us >= 0)
);
