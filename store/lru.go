package store

import "sync"

// lru caches committed current rows across batches so that hot entities (an Event counted on
// every mint) are not read back from PostgreSQL. Only the writer fills it, after its own commits
// and reads, so it never holds state the database does not; a revert clears it.
//
// It is an approximate LRU in two generations: entries go to the young map; when that holds
// half the capacity it becomes the old one and the previous old one is dropped; a hit in the old
// map moves the entry back to the young one. No per-entry list nodes: a flush puts tens of
// thousands of rows, and a linked list's allocations showed up in every commit.
type lru struct {
	mu         sync.Mutex
	half       int
	young, old map[lruKey]committed
}

type lruKey struct {
	t  int
	id string
}

// committed is the current committed version of an entity; vid 0 means "no such entity".
type committed struct {
	vid  int64
	from int64 // block the version starts at (immutable: its block)
	row  []any
}

func newLRU(capacity int) *lru {
	c := &lru{half: capacity / 2}
	c.clear()
	return c
}

func (c *lru) get(k lruKey) (committed, bool) {
	if c.half <= 0 {
		return committed{}, false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if v, ok := c.young[k]; ok {
		return v, true
	}
	v, ok := c.old[k]
	if ok {
		delete(c.old, k)
		c.putLocked(k, v)
	}
	return v, ok
}

func (c *lru) put(k lruKey, v committed) {
	if c.half <= 0 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.old, k)
	c.putLocked(k, v)
}

func (c *lru) putLocked(k lruKey, v committed) {
	if _, ok := c.young[k]; !ok && len(c.young) >= c.half {
		c.old, c.young = c.young, make(map[lruKey]committed, c.half)
	}
	c.young[k] = v
}

func (c *lru) clear() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.young, c.old = map[lruKey]committed{}, map[lruKey]committed{}
}
