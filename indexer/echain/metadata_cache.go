package echain

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// PGMetadataCache keeps fetched metadata documents in the store's indexer.metadata_cache table,
// so a restart or a resync does not fetch them again and a gateway outage after the first
// fetch costs nothing. Documents are chain-independent: reverts leave the table alone.
type PGMetadataCache struct {
	pool *pgxpool.Pool
}

// NewPGMetadataCache uses the store's pool (store.Store.Pool).
func NewPGMetadataCache(pool *pgxpool.Pool) *PGMetadataCache { return &PGMetadataCache{pool: pool} }

// cacheOpTimeout bounds one cache query: the cache must never be slower than the network.
const cacheOpTimeout = 2 * time.Second

// GetMetadata returns the stored document of uri.
func (c *PGMetadataCache) GetMetadata(ctx context.Context, uri string) ([]byte, bool, error) {
	ctx, cancel := context.WithTimeout(ctx, cacheOpTimeout)
	defer cancel()
	var body []byte
	err := c.pool.QueryRow(ctx, `SELECT body::text FROM indexer.metadata_cache WHERE uri = $1 AND body IS NOT NULL`, uri).Scan(&body)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("read metadata cache: %w", err)
	}
	return body, true, nil
}

// PutMetadata stores the document of uri (a JSON object), replacing an older one.
func (c *PGMetadataCache) PutMetadata(ctx context.Context, uri string, doc []byte) error {
	ctx, cancel := context.WithTimeout(ctx, cacheOpTimeout)
	defer cancel()
	_, err := c.pool.Exec(ctx, `INSERT INTO indexer.metadata_cache (uri, body, fetched_at) VALUES ($1, $2::jsonb, now())
		ON CONFLICT (uri) DO UPDATE SET body = excluded.body, fetched_at = excluded.fetched_at`, uri, string(doc))
	if err != nil {
		return fmt.Errorf("write metadata cache: %w", err)
	}
	return nil
}
