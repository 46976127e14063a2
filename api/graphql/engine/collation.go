package engine

import (
	"context"
	"sync"
	"time"
)

// Strings (ids included) sort byte-wise in The Graph (graph-node runs on the C locale). When the
// entity tables' text columns already collate that way, queries sort by the plain columns and
// the store's indexes serve ORDER BY; otherwise every text comparison adds COLLATE "C", which
// is correct but cannot use those indexes. The engine finds out once, on first use.
type collation struct {
	mu     sync.Mutex
	known  bool
	clause string
}

const collateC = ` COLLATE "C"`

// byteOrderLocales are libc locales whose collation is byte (code point) order.
var byteOrderLocales = map[string]bool{"C": true, "POSIX": true, "C.UTF-8": true, "C.utf8": true, "C.UTF8": true}

func (e *Engine) textCollation(ctx context.Context) string {
	c := &e.coll
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.known {
		return c.clause
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	var coll, datcollate, provider string
	err := e.pool.QueryRow(ctx, `SELECT coalesce(c.collname, 'default'), d.datcollate, d.datlocprovider::text
FROM pg_attribute a LEFT JOIN pg_collation c ON c.oid = a.attcollation
CROSS JOIN pg_database d
WHERE a.attrelid = to_regclass($1) AND a.attname = 'id' AND d.datname = current_database()`,
		e.m.types[0].table).Scan(&coll, &datcollate, &provider)
	if err != nil {
		// Tables not there yet, or the database is unreachable: be correct now, look again later.
		return collateC
	}
	c.known = true
	switch {
	case coll == "C" || coll == "POSIX" || coll == "ucs_basic":
		c.clause = ""
	case coll == "default" && provider == "c" && byteOrderLocales[datcollate]:
		c.clause = ""
	default:
		c.clause = collateC
		e.log.Warn("graphql: entity text columns do not collate byte-wise; ordering by strings adds COLLATE \"C\" and cannot use the indexes (create the database with LC_COLLATE=C)",
			"collation", coll, "database_collate", datcollate)
	}
	return c.clause
}
