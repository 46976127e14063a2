package engine

import (
	"context"
	"time"
)

// awaitExecute is Execute for a request over HTTP, which on a replica (Options.AwaitBlock > 0)
// waits for replay: a client that saw block N on one replica and asks for it again with
// `block: {number_gte: N}` (or `number: N`) on another that has not replayed N yet gets the
// answer once it has, within AwaitBlock, instead of an error, and never an older state. Every
// attempt is a fresh snapshot; the wait starts short and stays under the replica's poll cost.
func (e *Engine) awaitExecute(ctx context.Context, req Request, eo ExecOptions) *Result {
	res := e.execute(ctx, req, eo, true)
	if e.opts.AwaitBlock <= 0 || !blockAhead(res) {
		return res
	}
	deadline := time.Now().Add(e.opts.AwaitBlock)
	wait := 5 * time.Millisecond
	for blockAhead(res) && time.Now().Add(wait).Before(deadline) {
		select {
		case <-ctx.Done():
			return res
		case <-time.After(wait):
		}
		wait = min(2*wait, 50*time.Millisecond)
		res = e.execute(ctx, req, eo, true)
	}
	return res
}

// blockAhead reports whether the result failed only because it asked for a block not indexed
// (replayed, on a replica) yet.
func blockAhead(res *Result) bool {
	if len(res.Errors) == 0 {
		return false
	}
	for _, qe := range res.Errors {
		if c, _ := qe.Extensions["code"].(string); c != codeBlockAhead {
			return false
		}
	}
	return true
}
