package store

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/echain/echain-indexer/store/ddl"
)

// Commit says what a flushed batch makes of the cursor and the window.
type Commit struct {
	Head      BlockPtr   // the new cursor: last block the batch covers
	Window    []BlockPtr // blocks of the batch above Finalized, ascending (recorded for reorgs)
	Finalized int64      // blocks at or below are final; the window behind it is pruned
}

// out is one version to write.
type out struct {
	t     *table
	e     *bent
	vid   int64
	lower int64
	upper int64 // -1: open (current)
	row   []any
}

// commitSettings are the commit transaction's planner settings. plan_cache_mode: see
// customPlans. The joins off make the clamp a probe of the primary key per replaced version, as
// it is. An entity table in backfill has no statistics (ANALYZE runs behind it, or never with
// autovacuum off), and even with them the planner prices each probe as a random read: from
// about a thousand vids on a 100k-row table it hashed the whole table for the join, a full read
// per commit (270 ms against 5 ms for the probes, all in cache). Scoped to the commit's
// transaction; sequential scans stay allowed (turning them off slowed the backfill's commits).
const commitSettings = "SELECT set_config('plan_cache_mode', 'force_custom_plan', true), " +
	"set_config('enable_hashjoin', 'off', true), set_config('enable_mergejoin', 'off', true)"

// smallTable is the most versions of one table a commit INSERTs in its pipelined batch; more
// go by COPY. A realtime block writes a few rows per table, and each COPY costs round trips of
// its own, where INSERTs ride along with the cursor update in one.
const smallTable = 32

// Commit writes the batch in ONE transaction: new versions, the clamping of the versions they
// replace, the window rows with their first vids, the clamp records, the data sources, the
// cursor, and a change notification delivered at commit. On any error nothing is written. A
// realtime block takes two round trips: BEGIN with the cursor lock (and the lookups of entities
// the batch wrote blind), then every write, the NOTIFY and COMMIT in one pipeline; bigger
// batches stream their tables with binary COPY in between.
func (s *Store) Commit(ctx context.Context, b *Batch, c Commit) (err error) {
	start := time.Now()
	if b.s != s {
		return errors.New("store: commit: the batch belongs to another store")
	}
	if b.err != nil {
		return fmt.Errorf("store: commit: %w", b.err)
	}
	if err := b.checkCommit(c); err != nil {
		return fmt.Errorf("store: commit: %w", err)
	}
	for i, bt := range b.types {
		s.sizeHint[i].Store(int64(len(bt.ents)))
	}
	if err := s.ensureFilter(ctx); err != nil {
		return fmt.Errorf("store: commit: %w", err)
	}
	pc, err := s.pool.Acquire(ctx)
	if err != nil {
		return fmt.Errorf("store: commit: %w", err)
	}
	defer pc.Release()
	conn := pc.Conn()
	open := false
	defer func() {
		if open {
			rollback(conn)
		}
	}()

	// Round trip 1: open the transaction, lock the cursor, look up blind writes.
	q := &pgx.Batch{}
	q.Queue("BEGIN")
	q.Queue(commitSettings)
	q.Queue("SELECT number, hash, next_vid, finalized FROM " + ddl.HeadTable + " FOR UPDATE")
	pend := s.queueResolve(q, b)
	open = true
	var headNum *int64
	var headHash []byte
	var nextVid, finalized int64
	res := conn.SendBatch(ctx, q)
	_, err = res.Exec() // BEGIN
	if err == nil {
		_, err = res.Exec() // commitSettings
	}
	if err == nil {
		if err = res.QueryRow().Scan(&headNum, &headHash, &nextVid, &finalized); err != nil {
			err = fmt.Errorf("lock head: %w", notMigrated(err))
		}
	}
	if err == nil {
		err = s.readResolve(res, b, pend)
	}
	if cerr := res.Close(); err == nil && cerr != nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("store: commit: %w", err)
	}
	if err := s.checkWriter(nextVid); err != nil {
		return fmt.Errorf("store: commit: %w", err)
	}
	if headNum != nil {
		if c.Head.Number < *headNum || (c.Head.Number == *headNum && c.Head.Hash != hash32(headHash)) {
			return fmt.Errorf("store: commit: new head %d %s does not follow the head %d %x", c.Head.Number, c.Head.Hash, *headNum, headHash)
		}
		if len(b.blocks) > 0 && b.blocks[0].Number <= *headNum {
			return fmt.Errorf("store: commit: block %d is not above the head %d", b.blocks[0].Number, *headNum)
		}
		// The follower checks parents; this guards the store against a batch from another branch.
		next := c.Window
		if len(b.blocks) > 0 {
			next = append([]BlockPtr{b.blocks[0]}, c.Window...)
		}
		for _, p := range next {
			if p.Number == *headNum+1 && p.ParentHash != (common.Hash{}) && p.ParentHash != hash32(headHash) {
				return fmt.Errorf("store: commit: block %d has parent %s, but the head is %x", p.Number, p.ParentHash, headHash)
			}
		}
	}
	// A backfill batch far below the chain's finalized block is final up to its own head.
	fin := min(max(c.Finalized, finalized), c.Head.Number)
	collapseAt := int64(-1)
	if s.opts.HistoryBlocks > 0 {
		// Versions that pruning would delete anyway and no revert can reach.
		collapseAt = min(fin, c.Head.Number-s.opts.HistoryBlocks)
	}
	plan := s.plan(b, fin, collapseAt, nextVid)

	// Clamp the committed versions that the batch replaces before their successors arrive (the
	// deferred unique index on current ids checks row by row), then the versions: big tables by
	// COPY, small ones as INSERTs in the final pipeline.
	final := &pgx.Batch{}
	var copies []*table
	for _, t := range s.tables {
		if len(plan.rows[t.idx]) > smallTable {
			copies = append(copies, t)
		}
	}
	pre := final
	if len(copies) > 0 {
		pre = &pgx.Batch{}
	}
	for _, t := range s.tables {
		if vids := plan.clampVids[t.idx]; len(vids) > 0 {
			pre.Queue(t.clampSQL, vids, plan.clampAt[t.idx])
		}
	}
	if pre != final && pre.Len() > 0 {
		if err := conn.SendBatch(ctx, pre).Close(); err != nil {
			return fmt.Errorf("store: commit: clamp replaced versions: %w", err)
		}
	}
	for _, t := range copies {
		if err := copyRows(ctx, conn, t, plan.rows[t.idx]); err != nil {
			return fmt.Errorf("store: commit: write %s versions: %w", t.typ.Name, duplicate(t, err))
		}
	}
	for _, t := range s.tables {
		rows := plan.rows[t.idx]
		if len(rows) == 0 || len(rows) > smallTable {
			continue
		}
		for _, o := range rows {
			args, err := t.params(o)
			if err != nil {
				return fmt.Errorf("store: commit: %w", err)
			}
			final.Queue(t.insSQL, args...)
		}
	}
	if len(c.Window) > 0 {
		nums, hashes, parents, times, firsts := make([]int64, len(c.Window)), make([][]byte, len(c.Window)), make([][]byte, len(c.Window)), make([]int64, len(c.Window)), make([]int64, len(c.Window))
		for i, w := range c.Window {
			nums[i], hashes[i], parents[i], times[i] = w.Number, w.Hash.Bytes(), w.ParentHash.Bytes(), w.Timestamp
			firsts[i] = plan.firstVid(w.Number)
		}
		final.Queue(`INSERT INTO `+ddl.BlocksTable+` (number, hash, parent_hash, "timestamp", first_vid)
SELECT * FROM unnest($1::int8[], $2::bytea[], $3::bytea[], $4::int8[], $5::int8[])`, nums, hashes, parents, times, firsts)
	}
	final.Queue("DELETE FROM "+ddl.BlocksTable+" WHERE number <= $1", fin)
	if len(plan.clampRecs) > 0 {
		blocks, types, vids := make([]int64, 0, len(plan.clampRecs)), make([]string, 0, len(plan.clampRecs)), make([]string, 0, len(plan.clampRecs))
		for k, v := range plan.clampRecs {
			blocks = append(blocks, k.block)
			types = append(types, s.tables[k.t].typ.Name)
			vids = append(vids, int8ArrayText(v))
		}
		final.Queue(`INSERT INTO `+ddl.ClampsTable+` (block, entity_type, vids)
SELECT b, t, v::int8[] FROM unnest($1::int8[], $2::text[], $3::text[]) AS u(b, t, v)`, blocks, types, vids)
	}
	if s.opts.HistoryBlocks <= 0 {
		final.Queue("DELETE FROM "+ddl.ClampsTable+" WHERE block <= $1", fin)
	}
	if len(b.sources) > 0 {
		tmpl, addr, blk, key := make([]string, len(b.sources)), make([][]byte, len(b.sources)), make([]int64, len(b.sources)), make([]string, len(b.sources))
		for i, d := range b.sources {
			tmpl[i], addr[i], blk[i], key[i] = d.Template, d.Address.Bytes(), d.Block, d.Key
		}
		final.Queue(`INSERT INTO `+ddl.DataSourcesTable+` (template, address, block, key)
SELECT * FROM unnest($1::text[], $2::bytea[], $3::int8[], $4::text[])`, tmpl, addr, blk, key)
	}
	final.Queue(`UPDATE `+ddl.HeadTable+` SET number = $1, hash = $2, parent_hash = $3, "timestamp" = $4, finalized = $5, next_vid = $6, updated_at = now()`,
		c.Head.Number, c.Head.Hash.Bytes(), c.Head.ParentHash.Bytes(), c.Head.Timestamp, fin, plan.nextVid)
	if plan.collapsed {
		final.Queue("UPDATE "+ddl.HeadTable+" SET history_from = GREATEST(history_from, $1)", collapseAt+1)
	}
	final.Queue("SELECT pg_notify($1, $2)", NotifyChannel, changePayload(c.Head.Number, c.Head.Hash, false, s.changedIDs(b)))
	final.Queue("COMMIT")
	if err := conn.SendBatch(ctx, final).Close(); err != nil {
		var pe *pgconn.PgError
		if !errors.As(err, &pe) {
			// The connection failed: whether COMMIT happened is unknown, so is the database.
			s.forget()
		}
		if pgCode(err) == "23505" {
			return fmt.Errorf("store: commit: a version, data source or window block is already recorded (an immutable entity set again?): %w", err)
		}
		return fmt.Errorf("store: commit: %w", err)
	}
	open = false
	s.learned(plan.nextVid, func(f *idFilter) {
		for _, t := range s.tables {
			for _, o := range plan.rows[t.idx] {
				if o.upper < 0 {
					f.add(t.idx, o.e.id)
				}
			}
		}
	})

	// Committed: the batch's last versions are now the current state. Immutable entities are
	// written once and rarely read again: caching them would only push hot entities out.
	for _, t := range s.tables {
		rows := plan.rows[t.idx]
		if len(rows) == 0 {
			continue
		}
		if !t.typ.Immutable {
			for _, o := range rows {
				if o.upper < 0 {
					s.cache.put(lruKey{t.idx, o.e.id}, committed{vid: o.vid, from: o.lower, row: o.row})
				}
			}
		}
		s.m.versions.WithLabelValues(t.typ.Name).Add(float64(len(rows)))
	}
	s.m.commitSeconds.Observe(since(start))
	s.afterCommit(c.Head.Number, fin)
	return nil
}

// rollback ends a failed transaction; a connection that cannot is closed (the pool drops it).
func rollback(conn *pgx.Conn) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := conn.Exec(ctx, "ROLLBACK"); err != nil {
		conn.Close(ctx)
	}
}

// duplicate explains a unique violation of an immutable table.
func duplicate(t *table, err error) error {
	if pgCode(err) == "23505" && t.typ.Immutable {
		return fmt.Errorf("an immutable %s was set again: %w", t.typ.Name, err)
	}
	return err
}

// params are the INSERT arguments of one version.
func (t *table) params(o out) ([]any, error) {
	args := make([]any, 2+len(t.codecs))
	args[0] = o.vid
	if t.typ.Immutable {
		args[1] = int32(o.lower)
	} else {
		r := pgtype.Range[pgtype.Int4]{Lower: pgtype.Int4{Int32: int32(o.lower), Valid: true}, LowerType: pgtype.Inclusive, UpperType: pgtype.Unbounded, Valid: true}
		if o.upper >= 0 {
			r.Upper, r.UpperType = pgtype.Int4{Int32: int32(o.upper), Valid: true}, pgtype.Exclusive
		}
		args[1] = r
	}
	for i, cd := range t.codecs {
		if v := o.row[i]; v != nil {
			p, err := cd.param(v)
			if err != nil {
				return nil, fmt.Errorf("%s %q field %s: %w", t.typ.Name, o.e.id, cd.f.Name, err)
			}
			args[2+i] = p
		}
	}
	return args, nil
}

func (b *Batch) checkCommit(c Commit) error {
	if n := len(b.blocks); n > 0 && c.Head.Number < b.blocks[n-1].Number {
		return fmt.Errorf("head %d is below the batch's last block %d", c.Head.Number, b.blocks[n-1].Number)
	}
	for i, w := range c.Window {
		if w.Number <= c.Finalized {
			return fmt.Errorf("window block %d is not above finalized %d", w.Number, c.Finalized)
		}
		if w.Number > c.Head.Number {
			return fmt.Errorf("window block %d is above the head %d", w.Number, c.Head.Number)
		}
		if i > 0 && w.Number <= c.Window[i-1].Number {
			return fmt.Errorf("window blocks must ascend: %d after %d", w.Number, c.Window[i-1].Number)
		}
	}
	// A revert finds a block's versions through its window row: every block that wrote versions
	// above finality needs one.
	wi := 0
	for _, blk := range b.blocks {
		if blk.Number <= c.Finalized {
			continue
		}
		for wi < len(c.Window) && c.Window[wi].Number < blk.Number {
			wi++
		}
		if wi == len(c.Window) || c.Window[wi].Number != blk.Number {
			return fmt.Errorf("block %d is above finalized %d but not in the window", blk.Number, c.Finalized)
		}
		if c.Window[wi].Hash != blk.Hash && blk.Hash != (common.Hash{}) {
			return fmt.Errorf("block %d: the window says %s, StartBlock said %s", blk.Number, c.Window[wi].Hash, blk.Hash)
		}
	}
	return nil
}

// resolvePending is one lookup queued by queueResolve.
type resolvePending struct {
	t   *table
	ids []string
}

// queueResolve queues the lookups of entities the batch Set without reading first (and the id
// filter cannot rule out): the current vid of a mutable entity (to clamp it), and whether an
// immutable one already exists.
func (s *Store) queueResolve(q *pgx.Batch, b *Batch) []resolvePending {
	var ps []resolvePending
	for _, t := range s.tables {
		var ids []string
		for _, e := range b.types[t.idx].order {
			if !e.known && len(e.vers) > 0 {
				if s.knownAbsent(t, e.id) {
					e.known = true
					continue
				}
				ids = append(ids, e.id)
			}
		}
		if len(ids) > 0 {
			ps = append(ps, resolvePending{t, ids})
			q.Queue(t.findSQL, ids)
		}
	}
	return ps
}

func (s *Store) readResolve(res pgx.BatchResults, b *Batch, ps []resolvePending) error {
	for _, p := range ps {
		rows, err := res.Query()
		if err != nil {
			return fmt.Errorf("look up %s: %w", p.t.typ.Name, err)
		}
		bt := b.types[p.t.idx]
		for rows.Next() {
			var id string
			var vid int64
			var from int32
			if err := rows.Scan(&id, &vid, &from); err != nil {
				rows.Close()
				return fmt.Errorf("look up %s: %w", p.t.typ.Name, err)
			}
			e := bt.ents[id]
			if e.known {
				rows.Close()
				return fmt.Errorf("%s %q has more than one current version", p.t.typ.Name, id)
			}
			if p.t.typ.Immutable {
				rows.Close()
				return &ImmutableError{Type: p.t.typ.Name, ID: id, Block: int64(from)}
			}
			e.known, e.base = true, committed{vid: vid, from: int64(from)}
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return fmt.Errorf("look up %s: %w", p.t.typ.Name, err)
		}
		for _, id := range p.ids {
			bt.ents[id].known = true
		}
	}
	return nil
}

type clampKey struct {
	block int64
	t     int
}

// plan is a batch turned into rows: vids in block order, ranges, clamps.
type plan struct {
	rows      [][]out // by table, vid order
	clampVids [][]int64
	clampAt   [][]int32
	clampRecs map[clampKey][]int64 // versions closed at a block that a revert or pruning needs
	blockNums []int64              // numbers of the started blocks
	firsts    []int64              // first vid of each started block
	nextVid   int64
	collapsed bool // versions were merged: time travel below collapseAt+1 is approximate
}

// firstVid is the first vid written at block n or later (a revert to n-1 deletes from it).
func (p *plan) firstVid(n int64) int64 {
	for i, bn := range p.blockNums {
		if bn >= n {
			return p.firsts[i]
		}
	}
	return p.nextVid
}

func (s *Store) plan(b *Batch, finalized, collapseAt, next int64) *plan {
	p := &plan{
		rows:      make([][]out, len(s.tables)),
		clampVids: make([][]int64, len(s.tables)),
		clampAt:   make([][]int32, len(s.tables)),
		clampRecs: map[clampKey][]int64{},
		firsts:    make([]int64, len(b.blocks)),
		blockNums: make([]int64, len(b.blocks)),
	}
	pruning := s.opts.HistoryBlocks > 0
	type ref struct {
		t *table
		e *bent
		k int // index in e.vers
	}
	// Sized first: a backfill batch holds hundreds of thousands of versions, and growing these
	// slices by doubling was most of the commit's allocation.
	perBlock := make([]int, len(b.blocks))
	for _, t := range s.tables {
		n := 0
		for _, e := range b.types[t.idx].order {
			n += len(e.vers)
			for _, v := range e.vers {
				perBlock[v.blk]++
			}
		}
		p.rows[t.idx] = make([]out, 0, n)
	}
	total := 0
	for _, n := range perBlock {
		total += n
	}
	backing := make([]ref, total)
	byBlock := make([][]ref, len(b.blocks))
	for i, n := range perBlock {
		byBlock[i], backing = backing[:0:n], backing[n:]
	}
	for _, t := range s.tables {
		for _, e := range b.types[t.idx].order {
			vers := e.vers
			if len(vers) == 0 {
				continue
			}
			// With bounded history, the versions of a batch below the retained history collapse
			// into one: the last state, visible from the first of those blocks.
			if len(vers) > 1 && b.blocks[vers[1].blk].Number <= collapseAt {
				p.collapsed = true
				k := 1
				for k < len(vers) && b.blocks[vers[k].blk].Number <= collapseAt {
					k++
				}
				merged := bver{blk: vers[0].blk, row: vers[k-1].row}
				vers = append([]bver{merged}, vers[k:]...)
				e.vers = vers
			}
			for k, v := range vers {
				byBlock[v.blk] = append(byBlock[v.blk], ref{t, e, k})
			}
		}
	}
	// vids ascend with blocks: a block's versions are exactly vid >= its first vid, up to the
	// next block's; each table's rows come out in vid order, so the heap fills in block order.
	record := func(t *table, upper int64, vid int64) {
		if upper > finalized || pruning {
			k := clampKey{upper, t.idx}
			p.clampRecs[k] = append(p.clampRecs[k], vid)
		}
	}
	for i, refs := range byBlock {
		p.blockNums[i] = b.blocks[i].Number
		p.firsts[i] = next
		for _, r := range refs {
			t, e := r.t, r.e
			v := e.vers[r.k]
			o := out{t: t, e: e, vid: next, lower: b.blocks[v.blk].Number, upper: -1, row: v.row}
			next++
			if r.k+1 < len(e.vers) {
				o.upper = b.blocks[e.vers[r.k+1].blk].Number
				record(t, o.upper, o.vid)
			}
			if r.k == 0 && !t.typ.Immutable && e.base.vid != 0 {
				p.clampVids[t.idx] = append(p.clampVids[t.idx], e.base.vid)
				p.clampAt[t.idx] = append(p.clampAt[t.idx], int32(o.lower))
				record(t, o.lower, e.base.vid)
			}
			p.rows[t.idx] = append(p.rows[t.idx], o)
		}
	}
	p.nextVid = next
	return p
}

// copyRows streams one table's versions with COPY; encoding overlaps the server's work.
func copyRows(ctx context.Context, conn *pgx.Conn, t *table, rows []out) error {
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() {
		err := t.writeCopy(pw, rows)
		pw.CloseWithError(err)
		done <- err
	}()
	_, err := conn.PgConn().CopyFrom(ctx, pr, t.copySQL())
	pr.CloseWithError(io.ErrClosedPipe) // stops the writer if COPY ended early
	if werr := <-done; err == nil && werr != nil && werr != io.ErrClosedPipe {
		err = werr
	}
	return err
}

// int8ArrayText renders vids as an array literal ({1,2,3}): unnest cannot take ragged arrays.
func int8ArrayText(v []int64) string {
	buf := make([]byte, 0, len(v)*8+2)
	buf = append(buf, '{')
	for i, x := range v {
		if i > 0 {
			buf = append(buf, ',')
		}
		buf = strconv.AppendInt(buf, x, 10)
	}
	return string(append(buf, '}'))
}

func hash32(b []byte) common.Hash { return common.BytesToHash(b) }
