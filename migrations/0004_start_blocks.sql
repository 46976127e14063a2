-- Start blocks found by `start_block: auto` (the block of a contract's first log), so that a
-- restart does not search the chain again. A fact of the chain, not of the indexed state: a reset
-- or re-sync keeps it. Delete a row to search again.
CREATE TABLE indexer.start_blocks (
    address  bytea PRIMARY KEY,
    contract text NOT NULL,
    block    int8 NOT NULL,
    found_at timestamptz NOT NULL DEFAULT now()
);
