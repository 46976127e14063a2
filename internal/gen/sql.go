package main

import (
	"github.com/echain/echain-indexer/schema"
	"github.com/echain/echain-indexer/store/ddl"
)

// emitSQL renders the entity tables, indexes and analyst views (store/entities.gen.sql).
func emitSQL(sch *schema.Schema) ([]byte, error) {
	l, err := ddl.Build(sch)
	if err != nil {
		return nil, err
	}
	return []byte(l.SQL(sch)), nil
}
