-- System tables of the indexer. The follower owns the cursor and the block window; the store
-- writes them in the same transaction as the entity versions.

-- The cursor: one row. number is NULL before the first block is applied.
CREATE TABLE indexer.head (
    singleton    boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    number       int8,
    hash         bytea,
    parent_hash  bytea,
    "timestamp"  int8,
    -- blocks at or below are final: no revert reaches them
    finalized    int8 NOT NULL DEFAULT -1,
    -- the next version id; vids grow in block order, so a block's versions are vid >= its first_vid
    next_vid     int8 NOT NULL DEFAULT 1,
    -- time travel is complete from this block on (pruning raises it)
    history_from int8 NOT NULL DEFAULT 0,
    updated_at   timestamptz NOT NULL DEFAULT now()
);
INSERT INTO indexer.head (singleton) VALUES (true);

-- The unfinalized window: blocks a reorg may still remove.
CREATE TABLE indexer.blocks (
    number      int8 PRIMARY KEY,
    hash        bytea NOT NULL,
    parent_hash bytea NOT NULL,
    "timestamp" int8 NOT NULL,
    first_vid   int8 NOT NULL
);

-- Versions closed ("clamped") at a block: what a revert to below that block reopens, and what
-- pruning deletes once the block is older than the retained history. One row per block and type.
CREATE TABLE indexer.clamps (
    block       int8 NOT NULL,
    entity_type text NOT NULL,
    vids        int8[] NOT NULL
);
CREATE INDEX clamps_block ON indexer.clamps (block);

-- Contracts learned from logs (subgraph templates), forgotten by a revert below their block.
CREATE TABLE indexer.data_sources (
    template text NOT NULL,
    address  bytea NOT NULL,
    block    int8 NOT NULL,
    key      text NOT NULL DEFAULT '',
    PRIMARY KEY (template, address)
);
CREATE INDEX data_sources_block ON indexer.data_sources (block);

-- The entity layout the tables were made for; a different one refuses to start.
CREATE TABLE indexer.entity_schema (
    singleton          boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    fingerprint        text NOT NULL,
    source_fingerprint text NOT NULL,
    -- the analyst views are recreated when they change (descriptions only: no re-sync)
    views_fingerprint  text NOT NULL DEFAULT '',
    created_at         timestamptz NOT NULL DEFAULT now()
);

-- Requests to re-index (the resync command), taken by the indexing process.
CREATE TABLE indexer.resync_requests (
    id           bigserial PRIMARY KEY,
    -- re-index from this block; -1: from the start (after Reset)
    from_block   int8 NOT NULL,
    reason       text NOT NULL DEFAULT '',
    status       text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'done', 'failed')),
    error        text NOT NULL DEFAULT '',
    requested_at timestamptz NOT NULL DEFAULT now(),
    finished_at  timestamptz
);
CREATE INDEX resync_requests_pending ON indexer.resync_requests (id) WHERE status = 'pending';

-- Errors the mappings raised (what _meta.hasIndexingErrors reports).
CREATE TABLE indexer.indexing_errors (
    id            bigserial PRIMARY KEY,
    block         int8 NOT NULL,
    block_hash    bytea,
    handler       text NOT NULL DEFAULT '',
    message       text NOT NULL,
    deterministic boolean NOT NULL DEFAULT true,
    recorded_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX indexing_errors_block ON indexer.indexing_errors (block);

-- Fetched metadata documents by URI (chain-independent: kept across resyncs).
CREATE TABLE indexer.metadata_cache (
    uri        text PRIMARY KEY,
    body       jsonb,
    fetched_at timestamptz NOT NULL DEFAULT now()
);
