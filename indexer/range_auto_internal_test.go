package indexer

import (
	"io"
	"log/slog"
	"testing"

	"github.com/echain/echain-indexer/indexer/source"
	"github.com/echain/echain-indexer/store"
)

// The chain of issue 21 (2,190 blocks, 850 of them empty, Echain's transactions nearly all
// of the rest) must switch auto to receipts; a public chain whose blocks without Echain logs
// hold hundreds of other transactions must not.
func TestRangeTxsEstimate(t *testing.T) {
	quiet := func(n int, each uint64) []uint64 {
		out := make([]uint64, n)
		for i := range out {
			out[i] = each
		}
		return out
	}
	for _, tc := range []struct {
		name       string
		blocks     int
		logBlocks  int
		wanted     int
		stats      source.TxStats
		sample     []uint64
		wantSwitch bool
	}{
		// One range of that chain: 61 blocks, 24 empty; 37 with logs hold 1,650 transactions
		// of which 1,640 are Echain's; the node said so for 30 of them.
		{"echain chain with empty blocks", 61, 37, 1640, source.TxStats{Blocks: 30, BlockTxs: 1340, Wanted: 1332}, quiet(16, 0), true},
		{"public chain", 61, 3, 4, source.TxStats{Blocks: 3, BlockTxs: 600, Wanted: 4}, quiet(16, 200), false},
		{"no quiet blocks", 20, 20, 900, source.TxStats{Blocks: 20, BlockTxs: 1000, Wanted: 900}, nil, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			all := rangeTxs(tc.blocks, tc.logBlocks, tc.wanted, tc.stats, tc.sample)
			m := receiptsMode{setting: LogSourceAuto}
			log := slog.New(slog.NewTextHandler(io.Discard, nil))
			for range 3 {
				m.observe(log, float64(tc.wanted), all)
			}
			t.Logf("estimated %.0f transactions, handled share %.2f", all, float64(tc.wanted)/all)
			if m.use() != tc.wantSwitch {
				t.Fatalf("receipts mode %v, want %v (estimated %.0f transactions for %d handled)", m.use(), tc.wantSwitch, all, tc.wanted)
			}
		})
	}
}

func TestSampleQuietBlocks(t *testing.T) {
	var busy []*Block
	for _, n := range []int64{10, 11, 15, 19} {
		busy = append(busy, &Block{Ptr: store.BlockPtr{Number: n}})
	}
	got := sampleQuietBlocks(10, 29, busy, 4)
	if len(got) != 4 {
		t.Fatalf("sample %v: want 4 blocks", got)
	}
	for i, n := range got {
		if n == 10 || n == 11 || n == 15 || n == 19 || n < 10 || n > 29 || (i > 0 && n <= got[i-1]) {
			t.Fatalf("sample %v: want ascending blocks of 10..29 without logs", got)
		}
	}
	if got[len(got)-1]-got[0] < 8 {
		t.Errorf("sample %v is not spread over the range", got)
	}
	if got := sampleQuietBlocks(10, 11, busy, 4); got != nil {
		t.Errorf("range of busy blocks sampled %v", got)
	}
}

// Auto is undecided until it has observed one range, and that range alone decides: the
// backfill fetches its first ranges one at a time for it rather than reading a dense chain's
// first ranges in flight by eth_getLogs. Forced settings and an endpoint without block
// receipts have nothing to decide.
func TestReceiptsModeDecidesOnFirstRange(t *testing.T) {
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	dense := receiptsMode{setting: LogSourceAuto}
	if !dense.undecided() || dense.use() {
		t.Fatalf("fresh auto: undecided %v, receipts %v; want undecided on eth_getLogs", dense.undecided(), dense.use())
	}
	dense.observe(log, 1640, 1650)
	if dense.undecided() || !dense.use() {
		t.Fatalf("auto after a dense range: undecided %v, receipts %v; want decided on receipts", dense.undecided(), dense.use())
	}
	public := receiptsMode{setting: LogSourceAuto}
	public.observe(log, 4, 9800)
	if public.undecided() || public.use() {
		t.Fatalf("auto after a public chain's range: undecided %v, receipts %v; want decided on eth_getLogs", public.undecided(), public.use())
	}
	for _, m := range []*receiptsMode{{setting: LogSourceLogs}, {setting: LogSourceReceipts}, {setting: LogSourceAuto, never: true}} {
		if m.undecided() {
			t.Errorf("setting %s (never %v) is undecided: want nothing to decide", m.setting, m.never)
		}
	}
}
