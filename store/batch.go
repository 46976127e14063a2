package store

import (
	"context"
	"errors"
	"fmt"
)

// Batch is the in-memory entity cache of the block or block range being applied. The mappings
// Get (from the batch's own Sets, else the committed state, which is the state at the batch's
// parent block) and Set (a version at the current block); Commit flushes it in one transaction.
// A Batch is used by one goroutine, and must be created after the previous Commit or RevertTo
// returned. Rows passed to Set and returned by Get belong to the store: do not modify them (the
// generated entities copy values both ways).
type Batch struct {
	s       *Store
	blocks  []BlockPtr // in StartBlock order, numbers ascending
	types   []*batchType
	sources []DataSource
	err     error // the first misuse or invalid row; Commit returns it
	sets    int
}

type batchType struct {
	ents  map[string]*bent
	order []*bent // first touch order, for deterministic vids
}

// bent is one entity of the batch.
type bent struct {
	id    string
	known bool // the committed state below is resolved
	base  committed
	vers  []bver // versions written by the batch, ascending blocks
}

type bver struct {
	blk int // index in Batch.blocks
	row []any
}

// NewBatch starts an empty batch.
func (s *Store) NewBatch() *Batch {
	b := &Batch{s: s, types: make([]*batchType, len(s.tables))}
	for i := range b.types {
		n := 0
		if i < len(s.sizeHint) {
			n = int(min(s.sizeHint[i].Load(), 1<<20))
		}
		b.types[i] = &batchType{ents: make(map[string]*bent, n), order: make([]*bent, 0, n)}
	}
	return b
}

// StartBlock makes later Sets versions at this block. Blocks must ascend.
func (b *Batch) StartBlock(ptr BlockPtr) {
	if n := len(b.blocks); n > 0 && ptr.Number <= b.blocks[n-1].Number {
		b.fail(fmt.Errorf("StartBlock(%d) after block %d: blocks must ascend", ptr.Number, b.blocks[n-1].Number))
		return
	}
	if ptr.Number < 0 || ptr.Number > maxBlock {
		b.fail(fmt.Errorf("StartBlock(%d): block number out of range", ptr.Number))
		return
	}
	b.blocks = append(b.blocks, ptr)
}

// maxBlock is the largest block number an int4range holds (the bound is exclusive).
const maxBlock = 1<<31 - 2

// AddDataSource records a contract learned at the current block.
func (b *Batch) AddDataSource(ds DataSource) { b.sources = append(b.sources, ds) }

// Err returns the first error a Set or StartBlock recorded (Commit returns it too).
func (b *Batch) Err() error { return b.err }

// Len is the number of Set calls so far.
func (b *Batch) Len() int { return b.sets }

func (b *Batch) fail(err error) {
	if b.err == nil {
		b.err = err
	}
}

// Get returns the entity as the batch sees it: the latest Set of the batch, else the committed
// current version; nil when there is none.
func (b *Batch) Get(ctx context.Context, typ, id string) ([]any, error) {
	t, err := b.s.table(typ)
	if err != nil {
		return nil, fmt.Errorf("store: Get: %w", err)
	}
	bt := b.types[t.idx]
	e := bt.ents[id]
	if e != nil {
		if n := len(e.vers); n > 0 {
			b.s.m.lookups.WithLabelValues("batch").Inc()
			return e.vers[n-1].row, nil
		}
		if e.known {
			b.s.m.lookups.WithLabelValues("batch").Inc()
			return e.base.row, nil
		}
	}
	c, ok := b.s.cache.get(lruKey{t.idx, id})
	if ok {
		b.s.m.lookups.WithLabelValues("cache").Inc()
	} else if absent, err := b.s.absent(ctx, t, id); err != nil {
		return nil, fmt.Errorf("store: Get %s %q: %w", typ, id, err)
	} else if absent {
		b.s.m.lookups.WithLabelValues("filter").Inc()
	} else {
		b.s.m.lookups.WithLabelValues("database").Inc()
		c, err = b.s.loadCurrent(ctx, t, id)
		if err != nil {
			return nil, fmt.Errorf("store: Get %s %q: %w", typ, id, err)
		}
		b.s.cache.put(lruKey{t.idx, id}, c)
	}
	if e == nil {
		e = &bent{id: id}
		bt.ents[id] = e
		bt.order = append(bt.order, e)
	}
	e.known, e.base = true, c
	if len(e.vers) > 0 { // a blind Set came first
		return e.vers[len(e.vers)-1].row, nil
	}
	return c.row, nil
}

// Prefetch reads the committed state of many entities of one type in one query, so that the
// Gets that follow are answered from memory: a mapping that knows which entities a block's logs
// touch (tickets of Transfer logs, say) saves a round trip per entity, absent ones included.
// Entities the batch or the cache already knows are not read again.
func (b *Batch) Prefetch(ctx context.Context, typ string, ids []string) error {
	t, err := b.s.table(typ)
	if err != nil {
		return fmt.Errorf("store: Prefetch: %w", err)
	}
	bt := b.types[t.idx]
	entry := func(id string) *bent {
		e := bt.ents[id]
		if e == nil {
			e = &bent{id: id}
			bt.ents[id] = e
			bt.order = append(bt.order, e)
		}
		return e
	}
	var need []string
	seen := map[string]bool{}
	for _, id := range ids {
		if seen[id] {
			continue
		}
		seen[id] = true
		if e := bt.ents[id]; e != nil && e.known {
			continue
		}
		if c, ok := b.s.cache.get(lruKey{t.idx, id}); ok {
			e := entry(id)
			e.known, e.base = true, c
			continue
		}
		if absent, err := b.s.absent(ctx, t, id); err != nil {
			return fmt.Errorf("store: Prefetch %s: %w", typ, err)
		} else if absent {
			entry(id).known = true
			continue
		}
		need = append(need, id)
	}
	if len(need) == 0 {
		return nil
	}
	rows, err := b.s.pool.Query(ctx, t.manySQL, need)
	if err != nil {
		return fmt.Errorf("store: Prefetch %s: %w", typ, err)
	}
	defer rows.Close()
	for rows.Next() {
		vals, err := rows.Values()
		if err != nil {
			return fmt.Errorf("store: Prefetch %s: %w", typ, err)
		}
		c, err := t.decodeRow(vals)
		if err != nil {
			return fmt.Errorf("store: Prefetch %s: %w", typ, err)
		}
		id := c.row[0].(string)
		e := entry(id)
		if e.known {
			return fmt.Errorf("store: Prefetch %s %q: more than one current version: the table is inconsistent", typ, id)
		}
		e.known, e.base = true, c
		b.s.cache.put(lruKey{t.idx, id}, c)
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("store: Prefetch %s: %w", typ, err)
	}
	for _, id := range need {
		if e := entry(id); !e.known {
			e.known = true
			b.s.cache.put(lruKey{t.idx, id}, committed{})
		}
	}
	b.s.m.lookups.WithLabelValues("database").Add(float64(len(need)))
	return nil
}

// Set records row as the entity's version at the current block (replacing a Set of the same
// block). Errors (unknown type, wrong value types, null in a non-null field, changing an
// immutable entity) are recorded and returned by Commit.
func (b *Batch) Set(typ string, row []any) {
	if b.err != nil {
		return
	}
	t, err := b.s.table(typ)
	if err != nil {
		b.fail(fmt.Errorf("Set: %w", err))
		return
	}
	if len(b.blocks) == 0 {
		b.fail(fmt.Errorf("Set %s before StartBlock", typ))
		return
	}
	row, err = t.normalize(row)
	if err != nil {
		b.fail(err)
		return
	}
	id := row[0].(string)
	bt := b.types[t.idx]
	e := bt.ents[id]
	if e == nil {
		e = &bent{id: id}
		if c, ok := b.s.cache.get(lruKey{t.idx, id}); ok {
			e.known, e.base = true, c
		}
		bt.ents[id] = e
		bt.order = append(bt.order, e)
	}
	cur := len(b.blocks) - 1
	if t.typ.Immutable {
		if e.known && e.base.vid != 0 {
			b.fail(&ImmutableError{Type: typ, ID: id, Block: e.base.from})
			return
		}
		if n := len(e.vers); n > 0 && e.vers[n-1].blk != cur {
			b.fail(&ImmutableError{Type: typ, ID: id, Block: b.blocks[e.vers[n-1].blk].Number})
			return
		}
	}
	b.sets++
	if n := len(e.vers); n > 0 && e.vers[n-1].blk == cur {
		e.vers[n-1].row = row
		return
	}
	e.vers = append(e.vers, bver{blk: cur, row: row})
}

// ImmutableError reports a Set of an immutable entity that already exists at an earlier block.
type ImmutableError struct {
	Type, ID string
	Block    int64 // the block it was created at
}

func (e *ImmutableError) Error() string {
	return fmt.Sprintf("%s %q is immutable and was created at block %d: it cannot be set again", e.Type, e.ID, e.Block)
}

// normalize checks a row against the columns and returns the row the store keeps (a copy when
// a value had to change).
func (t *table) normalize(row []any) ([]any, error) {
	if len(row) != len(t.codecs) {
		return nil, fmt.Errorf("Set %s: row has %d values, the type has %d columns", t.typ.Name, len(row), len(t.codecs))
	}
	id, ok := row[0].(string)
	if !ok || id == "" {
		return nil, fmt.Errorf("Set %s: id must be a non-empty string, got %T %v", t.typ.Name, row[0], row[0])
	}
	out := row
	for i, c := range t.codecs {
		v := row[i]
		if isNull(v) {
			if !c.nullable {
				return nil, fmt.Errorf("Set %s %q: field %s (%s) is non-null but got nil", t.typ.Name, id, c.f.Name, c.f.GraphQLType())
			}
			if v != nil {
				out = copyOnce(out, row)
				out[i] = nil
			}
			continue
		}
		n, err := c.normalize(v)
		if err != nil {
			return nil, fmt.Errorf("Set %s %q: field %s (%s): %w", t.typ.Name, id, c.f.Name, c.f.GraphQLType(), err)
		}
		if s, ok := n.(string); ok && s != v.(string) {
			out = copyOnce(out, row)
			out[i] = n
		} else if !ok && c.f.List {
			out = copyOnce(out, row)
			out[i] = n
		}
	}
	if out[0].(string) != id {
		return nil, fmt.Errorf("Set %s: id %q is not valid text", t.typ.Name, id)
	}
	return out, nil
}

func copyOnce(out, row []any) []any {
	if &out[0] != &row[0] {
		return out
	}
	c := make([]any, len(row))
	copy(c, row)
	return c
}

// loadCurrent reads the committed current version of an entity (vid 0 when there is none).
func (s *Store) loadCurrent(ctx context.Context, t *table, id string) (committed, error) {
	rows, err := s.pool.Query(ctx, t.getSQL, id)
	if err != nil {
		return committed{}, err
	}
	defer rows.Close()
	if !rows.Next() {
		return committed{}, rows.Err()
	}
	vals, err := rows.Values()
	if err != nil {
		return committed{}, err
	}
	c, err := t.decodeRow(vals)
	if err != nil {
		return committed{}, err
	}
	if rows.Next() {
		return committed{}, errors.New("more than one current version: the table is inconsistent")
	}
	return c, rows.Err()
}

// decodeRow turns (vid, block, columns...) as pgx returns them into a committed version.
func (t *table) decodeRow(vals []any) (committed, error) {
	vid, ok1 := vals[0].(int64)
	from, ok2 := vals[1].(int32)
	if !ok1 || !ok2 {
		return committed{}, fmt.Errorf("unexpected system columns %T %T", vals[0], vals[1])
	}
	row := make([]any, len(t.codecs))
	for i, c := range t.codecs {
		v := vals[i+2]
		if v == nil {
			continue
		}
		d, err := c.decode(v)
		if err != nil {
			return committed{}, fmt.Errorf("column %s: %w", c.f.Column, err)
		}
		row[i] = d
	}
	return committed{vid: vid, from: int64(from), row: row}, nil
}
