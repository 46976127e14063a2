package rpcproxy

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/echain/echain-indexer/devchain"
)

func startChain(t *testing.T, blocks int) *devchain.Chain {
	t.Helper()
	var c *devchain.Chain
	var err error
	for range 3 { // see STATUS: devchain's deploy sometimes seals too early
		c, err = devchain.Start(context.Background(), devchain.Config{MetadataAddr: "off"}, slog.New(slog.NewTextHandler(io.Discard, nil)))
		if err == nil {
			break
		}
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	for range blocks {
		if _, err := c.Commit(); err != nil {
			t.Fatal(err)
		}
	}
	return c
}

// post sends a raw JSON-RPC body and returns the raw answer and status.
func post(t *testing.T, url, body string) (int, http.Header, []byte) {
	t.Helper()
	resp, err := http.Post(url, "application/json", bytes.NewBufferString(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, b
}

func TestProxyRules(t *testing.T) {
	c := startChain(t, 2)
	p, err := New(c.HTTPURL)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()

	p.Add(Rule{Method: "eth_blockNumber", Times: 1, Status: 429, RetryAfter: "2"})
	code, hdr, _ := post(t, p.URL(), `{"jsonrpc":"2.0","id":1,"method":"eth_blockNumber","params":[]}`)
	if code != 429 || hdr.Get("Retry-After") != "2" {
		t.Fatalf("first call: %d %q", code, hdr.Get("Retry-After"))
	}
	code, _, body := post(t, p.URL(), `{"jsonrpc":"2.0","id":1,"method":"eth_blockNumber","params":[]}`)
	if code != 200 || !bytes.Contains(body, []byte(`"result":"0x`)) {
		t.Fatalf("second call (rule used up): %d %s", code, body)
	}

	// In a batch only the matching element fails.
	remove := p.Add(Rule{Method: "eth_chainId", Error: &RPCError{Code: -32000, Message: "boom"}})
	code, _, body = post(t, p.URL(), `[{"jsonrpc":"2.0","id":1,"method":"eth_blockNumber","params":[]},{"jsonrpc":"2.0","id":2,"method":"eth_chainId","params":[]}]`)
	var answers []message
	if err := json.Unmarshal(body, &answers); err != nil || code != 200 || len(answers) != 2 {
		t.Fatalf("batch: %d %s", code, body)
	}
	if answers[0].Error != nil || answers[1].Error == nil || answers[1].Error.Message != "boom" || string(answers[1].ID) != "2" {
		t.Fatalf("batch answers %s", body)
	}
	remove()
	if _, _, body = post(t, p.URL(), `{"jsonrpc":"2.0","id":1,"method":"eth_chainId","params":[]}`); !bytes.Contains(body, []byte(`"result"`)) {
		t.Fatalf("removed rule still applies: %s", body)
	}
	if p.Calls("eth_chainId") != 2 || p.Faults("eth_chainId") != 1 || p.Calls("eth_blockNumber") != 3 {
		t.Fatalf("counts: chainId %d/%d blockNumber %d", p.Calls("eth_chainId"), p.Faults("eth_chainId"), p.Calls("eth_blockNumber"))
	}

	// MaxLogsRange only refuses longer ranges, and suggests the allowed one.
	p.Add(MaxLogsRange(2, Infura))
	_, _, body = post(t, p.URL(), `{"jsonrpc":"2.0","id":1,"method":"eth_getLogs","params":[{"fromBlock":"0x0","toBlock":"0x2"}]}`)
	if !bytes.Contains(body, []byte("Try with this block range [0x0, 0x1]")) {
		t.Fatalf("long range: %s", body)
	}
	_, _, body = post(t, p.URL(), `{"jsonrpc":"2.0","id":1,"method":"eth_getLogs","params":[{"fromBlock":"0x0","toBlock":"0x1"}]}`)
	if !bytes.Contains(body, []byte(`"result":[`)) {
		t.Fatalf("short range: %s", body)
	}

	// Drop closes the connection without an answer.
	p.Add(Rule{Method: "net_version", Drop: true})
	if _, err := http.Post(p.URL(), "application/json", bytes.NewBufferString(`{"jsonrpc":"2.0","id":1,"method":"net_version","params":[]}`)); err == nil {
		t.Fatal("dropped request got an answer")
	}
}

func TestProxyLag(t *testing.T) {
	c := startChain(t, 6)
	p, err := New(c.HTTPURL)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	real := c.Head().Number.Uint64()
	p.SetLag(3)
	ctx := context.Background()
	cl := c.Client() // the truth, in process
	lagged := func(body string) []byte {
		_, _, b := post(t, p.URL(), body)
		return b
	}
	var n struct{ Result string }
	_ = json.Unmarshal(lagged(`{"jsonrpc":"2.0","id":1,"method":"eth_blockNumber","params":[]}`), &n)
	if got, _ := parseQuantity(n.Result); got != real-3 {
		t.Fatalf("blockNumber %d, want %d", got, real-3)
	}
	var blk struct {
		Result *struct{ Number, Hash string }
	}
	_ = json.Unmarshal(lagged(`{"jsonrpc":"2.0","id":1,"method":"eth_getBlockByNumber","params":["latest",false]}`), &blk)
	if blk.Result == nil || blk.Result.Number != quantity(real-3) {
		t.Fatalf("latest %+v", blk.Result)
	}
	if b := lagged(`{"jsonrpc":"2.0","id":1,"method":"eth_getBlockByNumber","params":["` + quantity(real) + `",false]}`); !bytes.Contains(b, []byte(`"result":null`)) {
		t.Fatalf("block above the lag: %s", b)
	}
	head, _ := cl.HeaderByNumber(ctx, nil)
	if b := lagged(`{"jsonrpc":"2.0","id":1,"method":"eth_getBlockByHash","params":["` + head.Hash().Hex() + `",false]}`); !bytes.Contains(b, []byte(`"result":null`)) {
		t.Fatalf("head by hash: %s", b)
	}
	if b := lagged(`{"jsonrpc":"2.0","id":1,"method":"eth_getLogs","params":[{"blockHash":"` + head.Hash().Hex() + `"}]}`); !bytes.Contains(b, []byte("unknown block")) {
		t.Fatalf("logs of the head by hash: %s", b)
	}
	// A range past the lagged head is silently cut short.
	if b := lagged(`{"jsonrpc":"2.0","id":1,"method":"eth_getLogs","params":[{"fromBlock":"` + quantity(real-1) + `","toBlock":"` + quantity(real) + `"}]}`); !bytes.Contains(b, []byte(`"result":[]`)) {
		t.Fatalf("range above the lag: %s", b)
	}
	p.SetLag(0)
	if b := lagged(`{"jsonrpc":"2.0","id":1,"method":"eth_getBlockByHash","params":["` + head.Hash().Hex() + `",false]}`); bytes.Contains(b, []byte(`"result":null`)) {
		t.Fatalf("lag 0 still hides the head: %s", b)
	}
}

func TestTCPProxyCutRefuseFreeze(t *testing.T) {
	// An echo server stands in for the node: the TCP proxy knows nothing of JSON-RPC.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() { _, _ = io.Copy(c, c); _ = c.Close() }()
		}
	}()
	p, err := NewTCP(ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	dial := func() net.Conn {
		c, err := net.Dial("tcp", p.Addr())
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	echo := func(c net.Conn) error {
		_ = c.SetDeadline(time.Now().Add(300 * time.Millisecond))
		if _, err := c.Write([]byte("ping")); err != nil {
			return err
		}
		buf := make([]byte, 4)
		_, err := io.ReadFull(c, buf)
		return err
	}
	c1 := dial()
	if err := echo(c1); err != nil {
		t.Fatalf("echo through the proxy: %v", err)
	}
	if p.CutAll() != 1 {
		t.Fatal("CutAll should cut one connection")
	}
	if echo(c1) == nil {
		t.Fatal("cut connection still works")
	}
	p.Refuse(300 * time.Millisecond)
	if echo(dial()) == nil {
		t.Fatal("connection accepted during the refusal")
	}
	time.Sleep(350 * time.Millisecond)
	c3 := dial()
	if err := echo(c3); err != nil {
		t.Fatalf("after the refusal: %v", err)
	}
	if p.Freeze() != 1 {
		t.Fatal("Freeze should freeze one connection")
	}
	if echo(c3) == nil {
		t.Fatal("frozen connection still carries data")
	}
	if err := echo(dial()); err != nil {
		t.Fatalf("new connection after a freeze: %v", err)
	}
	if p.Refused() != 1 || p.Accepted() != 3 {
		t.Fatalf("accepted %d refused %d", p.Accepted(), p.Refused())
	}
}
