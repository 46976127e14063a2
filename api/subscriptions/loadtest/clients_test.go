package loadtest

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"

	"github.com/echain/echain-indexer/api/subscriptions"
)

// clientEnv carries the benchConfig to the client process.
const clientEnv = "ECHAIN_SUBS_LOAD_CLIENTS"

const subQuery = `subscription Sold($id: ID!) { event(id: $id) { ticketsSold } }`

// clientMain connects cfg.Clients subscribers, then records when each receives each block's
// result. Protocol on stdin/stdout: it prints "ready ..." once every client has its first
// result; for each "block N T0" line it prints "done N received" once every client has block N
// (or after 20 s); "end" makes it print "report {json}" and exit.
func clientMain() int {
	var cfg benchConfig
	if err := json.Unmarshal([]byte(os.Getenv(clientEnv)), &cfg); err != nil {
		fmt.Fprintln(os.Stderr, "clients: bad config:", err)
		return 2
	}
	if _, err := raiseNoFile(); err != nil {
		fmt.Fprintln(os.Stderr, "clients: raise the open-file limit:", err)
		return 2
	}
	recv := make([][]int64, cfg.Clients) // unix nanos per client per block
	counts := make([]atomic.Int64, cfg.Blocks)
	conns := make([]*websocket.Conn, cfg.Clients)
	dialer := websocket.Dialer{Subprotocols: []string{cfg.Proto}, HandshakeTimeout: 30 * time.Second,
		ReadBufferSize: 1024, WriteBufferSize: 512}
	start := time.Now()
	var next atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	for range 64 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= cfg.Clients {
					return
				}
				ws, err := connect(&dialer, cfg, i)
				if err != nil {
					errs <- fmt.Errorf("client %d: %w", i, err)
					return
				}
				conns[i] = ws
				recv[i] = make([]int64, cfg.Blocks)
			}
		}()
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		fmt.Fprintln(os.Stderr, "clients:", err)
		return 1
	}
	for i, ws := range conns {
		go read(ws, cfg, recv[i], counts)
	}
	fmt.Printf("ready %d clients subscribed in %v\n", cfg.Clients, time.Since(start).Round(time.Millisecond))

	t0 := make([]int64, cfg.Blocks)
	sc := bufio.NewScanner(os.Stdin)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		switch {
		case len(f) == 3 && f[0] == "block":
			n, _ := strconv.ParseInt(f[1], 10, 64)
			ts, _ := strconv.ParseInt(f[2], 10, 64)
			idx := int(n - cfg.First)
			if idx < 0 || idx >= cfg.Blocks {
				fmt.Fprintln(os.Stderr, "clients: unexpected block", n)
				return 1
			}
			t0[idx] = ts
			deadline := time.Now().Add(20 * time.Second)
			for counts[idx].Load() < int64(cfg.Clients) && time.Now().Before(deadline) {
				time.Sleep(time.Millisecond)
			}
			fmt.Printf("done %d %d\n", n, counts[idx].Load())
		case len(f) == 1 && f[0] == "end":
			b, _ := json.Marshal(summarize(cfg, recv, t0))
			fmt.Printf("report %s\n", b)
			return 0
		}
	}
	return 1
}

// connect opens one client and waits for its first result.
func connect(d *websocket.Dialer, cfg benchConfig, i int) (*websocket.Conn, error) {
	ws, resp, err := d.Dial(cfg.URL, nil)
	if err != nil {
		return nil, err
	}
	resp.Body.Close()
	legacy := cfg.Proto == subscriptions.ProtoLegacyWS
	subscribe := "subscribe"
	want := "next"
	if legacy {
		subscribe, want = "start", "data"
	}
	msgs := []map[string]any{
		{"type": "connection_init", "payload": map[string]any{}},
		{"id": "1", "type": subscribe, "payload": map[string]any{"query": subQuery,
			"variables": map[string]any{"id": strconv.Itoa(i%cfg.Ops + 1)}}},
	}
	for _, m := range msgs {
		if err := ws.WriteJSON(m); err != nil {
			ws.Close()
			return nil, err
		}
	}
	_ = ws.SetReadDeadline(time.Now().Add(60 * time.Second))
	for {
		var m struct{ Type string }
		if err := ws.ReadJSON(&m); err != nil {
			ws.Close()
			return nil, err
		}
		switch m.Type {
		case want:
			_ = ws.SetReadDeadline(time.Time{})
			return ws, nil
		case "connection_ack", "ka":
		default:
			ws.Close()
			return nil, fmt.Errorf("got %s before the first result", m.Type)
		}
	}
}

var numberKey = []byte(`"number":`)

// read records the arrival of every block's result (the block number is read from the
// payload's extensions without decoding the rest).
func read(ws *websocket.Conn, cfg benchConfig, recv []int64, counts []atomic.Int64) {
	for {
		_, data, err := ws.ReadMessage()
		now := time.Now().UnixNano()
		if err != nil {
			return
		}
		i := bytes.LastIndex(data, numberKey)
		if i < 0 {
			continue // ka
		}
		rest := data[i+len(numberKey):]
		j := bytes.IndexByte(rest, ',')
		if j < 0 {
			continue
		}
		n, err := strconv.ParseInt(string(rest[:j]), 10, 64)
		if err != nil {
			continue
		}
		idx := int(n - cfg.First)
		if idx >= 0 && idx < len(recv) && recv[idx] == 0 {
			recv[idx] = now
			counts[idx].Add(1)
		}
	}
}

func summarize(cfg benchConfig, recv [][]int64, t0 []int64) report {
	var rep report
	var all []float64
	for b := range cfg.Blocks {
		if t0[b] == 0 {
			continue
		}
		first, last := -1.0, -1.0
		for c := range recv {
			if recv[c][b] == 0 {
				rep.MissingDeliveries++
				continue
			}
			ms := float64(recv[c][b]-t0[b]) / 1e6
			all = append(all, ms)
			if first < 0 || ms < first {
				first = ms
			}
			if ms > last {
				last = ms
			}
		}
		rep.PerBlockFirst = append(rep.PerBlockFirst, first)
		rep.PerBlockLast = append(rep.PerBlockLast, last)
	}
	rep.Deliveries = len(all)
	f, l, a := sorted(rep.PerBlockFirst), sorted(rep.PerBlockLast), sorted(all)
	rep.FirstP50, rep.FirstMax = percentile(f, 50), percentile(f, 100)
	rep.LastP50, rep.LastP99, rep.LastMax = percentile(l, 50), percentile(l, 99), percentile(l, 100)
	rep.DeliveryP50, rep.DeliveryP99 = percentile(a, 50), percentile(a, 99)
	return rep
}
