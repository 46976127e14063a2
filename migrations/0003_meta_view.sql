-- How fresh the analyst views are: the block the indexer has applied.
CREATE VIEW echain._meta AS
SELECT number AS block_number,
       '0x' || encode(hash, 'hex') AS block_hash,
       to_timestamp("timestamp") AS block_time,
       finalized AS finalized_block,
       history_from,
       updated_at
FROM indexer.head;
COMMENT ON VIEW echain._meta IS 'The block the echain views reflect (one row; block_number is NULL before the first block).';
COMMENT ON COLUMN echain._meta.block_number IS 'Last block applied by the indexer.';
COMMENT ON COLUMN echain._meta.block_hash IS 'Its hash (0x hex).';
COMMENT ON COLUMN echain._meta.block_time IS 'Its timestamp.';
COMMENT ON COLUMN echain._meta.finalized_block IS 'Blocks at or below are final (-1: none yet).';
COMMENT ON COLUMN echain._meta.history_from IS 'Time travel (GraphQL block: arguments) is exact from this block on.';
COMMENT ON COLUMN echain._meta.updated_at IS 'When the indexer last moved the cursor.';
DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'echain_reader') THEN
        GRANT SELECT ON echain._meta TO echain_reader;
    END IF;
END
$$;
