package subscriptions_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/echain/echain-indexer/api"
	"github.com/echain/echain-indexer/api/subscriptions"
)

// TestGraphiQLInBrowser opens the GraphiQL page in a real headless Chromium whose resolver
// knows no host but 127.0.0.1 (so the page works only if every asset comes from the binary),
// runs the default query, then a subscription, and watches the page show a push for each block
// the store commits. Chromium is driven over the DevTools protocol with the WebSocket client
// the project already uses. CI installs Debian's chromium (.ci/run); without it the test fails.
func TestGraphiQLInBrowser(t *testing.T) {
	bin := chromiumPath(t)
	st, sch, url := openStore(t)
	w := &chainWriter{t: t, st: st, sch: sch}
	w.commit(event("1", 1))
	r := startReplica(t, url, sch, subscriptions.Options{})
	base := "http://" + r.http.Addr()

	b := startChromium(t, bin)
	page := b.newPage(t)
	page.call(t, "Network.enable", nil)
	page.call(t, "Page.navigate", map[string]any{"url": base + api.PathGraphQL})

	const wait = 2 * time.Minute // a busy CI machine starts Chromium and renders slowly
	page.waitJS(t, "the GraphiQL editor", wait, `!!document.querySelector('.graphiql-query-editor .CodeMirror') && !!document.querySelector('.graphiql-execute-button')`)

	// The default query (_meta) runs over HTTP.
	page.eval(t, `document.querySelector('.graphiql-execute-button').click()`)
	result := `(function(){ var e = document.querySelector('.result-window .CodeMirror'); return e ? e.CodeMirror.getValue() : '' })()`
	page.waitJS(t, "the _meta answer in the result pane", wait, result+`.includes('"deployment": "echain"') && `+result+`.includes('"number": 1')`)

	// A subscription runs over the WebSocket; each committed block pushes its answer.
	page.eval(t, `document.querySelector('.graphiql-query-editor .CodeMirror').CodeMirror.setValue('subscription { events(orderBy: id) { id ticketsSold } }')`)
	// GraphiQL parses the editor's text a moment after it changes and picks the transport from
	// that parse: a click before it sends the subscription over HTTP, which says so; click again.
	started := false
	for deadline := time.Now().Add(wait); !started && time.Now().Before(deadline); time.Sleep(500 * time.Millisecond) {
		page.eval(t, `document.querySelector('.result-window .CodeMirror').CodeMirror.setValue('')`)
		page.eval(t, `document.querySelector('.graphiql-execute-button').click()`)
		for time.Now().Before(deadline) {
			time.Sleep(100 * time.Millisecond)
			if string(page.eval(t, result+`.includes('need a WebSocket')`)) == "true" {
				break
			}
			if string(page.eval(t, result+`.includes('"ticketsSold": "1"')`)) == "true" {
				started = true
				break
			}
		}
	}
	page.waitJS(t, "the subscription's first answer", wait, result+`.includes('"ticketsSold": "1"')`)
	for sold := int64(2); sold <= 4; sold++ {
		w.commit(event("1", sold))
		page.waitJS(t, fmt.Sprintf("the push of block %d (ticketsSold %d)", len(w.blocks), sold), wait,
			result+fmt.Sprintf(`.includes('"ticketsSold": "%d"')`, sold))
	}
	w.commit(event("2", 7))
	page.waitJS(t, "the push of a new event", wait, result+`.includes('"id": "2"')`)

	// Nothing left 127.0.0.1 (the resolver would have refused it, but say so plainly).
	for _, u := range page.requested() {
		if !strings.HasPrefix(u, base) && !strings.HasPrefix(u, "ws://"+r.http.Addr()) && !strings.HasPrefix(u, "data:") {
			t.Errorf("the page requested %s: its assets must come from the binary", u)
		}
	}
}

func chromiumPath(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("CHROMIUM"); p != "" {
		return p
	}
	for _, name := range []string{"chromium", "chromium-browser"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	t.Fatal("chromium is not installed: the GraphiQL browser test needs Debian's chromium package (`apt-get install chromium`; .ci/run installs it), or CHROMIUM=/path/to/chrome")
	return ""
}

// browser is a headless Chromium reached over its DevTools WebSocket.
type browser struct {
	ws      *websocket.Conn
	mu      sync.Mutex // writes
	nextID  int
	pending map[int]chan cdpReply
	events  chan cdpReply
	urls    []string
	urlsMu  sync.Mutex
}

type cdpReply struct {
	ID        int             `json:"id"`
	Method    string          `json:"method"`
	SessionID string          `json:"sessionId"`
	Result    json.RawMessage `json:"result"`
	Params    json.RawMessage `json:"params"`
	Error     *struct {
		Message string `json:"message"`
	} `json:"error"`
}

var devtoolsURL = regexp.MustCompile(`DevTools listening on (ws://\S+)`)

func startChromium(t *testing.T, bin string) *browser {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	args := []string{"--headless=new", "--disable-gpu", "--disable-quic", "--no-first-run",
		"--disable-background-networking", "--disable-component-update", "--disable-sync",
		"--disable-dev-shm-usage", "--user-data-dir=" + t.TempDir(), "--remote-debugging-port=0",
		// No network but loopback: a page that fetched anything from elsewhere would not load.
		"--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1",
		"about:blank"}
	if os.Geteuid() == 0 {
		args = append([]string{"--no-sandbox"}, args...) // Chromium refuses its sandbox as root
	}
	cmd := exec.CommandContext(ctx, bin, args...)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", bin, err)
	}
	done := make(chan struct{})
	t.Cleanup(func() {
		cancel()
		<-done
	})
	found := make(chan string, 1)
	var tail []string
	go func() {
		defer close(done)
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			if m := devtoolsURL.FindStringSubmatch(sc.Text()); m != nil {
				select {
				case found <- m[1]:
				default:
				}
			} else if len(tail) < 20 {
				tail = append(tail, sc.Text())
			}
		}
		_ = cmd.Wait()
	}()
	var wsURL string
	select {
	case wsURL = <-found:
	case <-done:
		t.Fatalf("chromium exited before listening: %s", strings.Join(tail, "\n"))
	case <-time.After(2 * time.Minute):
		t.Fatal("chromium did not print its DevTools address within 2 minutes")
	}
	ws, _, err := websocket.DefaultDialer.Dial(wsURL, nil)
	if err != nil {
		t.Fatalf("dial DevTools %s: %v", wsURL, err)
	}
	ws.SetReadLimit(64 << 20)
	b := &browser{ws: ws, pending: map[int]chan cdpReply{}}
	go b.read()
	t.Cleanup(func() { ws.Close() })
	return b
}

func (b *browser) read() {
	for {
		var m cdpReply
		if err := b.ws.ReadJSON(&m); err != nil {
			b.mu.Lock()
			for id, ch := range b.pending {
				close(ch)
				delete(b.pending, id)
			}
			b.mu.Unlock()
			return
		}
		if m.ID == 0 {
			b.event(m)
			continue
		}
		b.mu.Lock()
		ch := b.pending[m.ID]
		delete(b.pending, m.ID)
		b.mu.Unlock()
		if ch != nil {
			ch <- m
		}
	}
}

// event records the URLs the page asks for.
func (b *browser) event(m cdpReply) {
	var p struct {
		URL     string `json:"url"`
		Request struct {
			URL string `json:"url"`
		} `json:"request"`
	}
	switch m.Method {
	case "Network.requestWillBeSent", "Network.webSocketCreated":
		if json.Unmarshal(m.Params, &p) == nil {
			b.urlsMu.Lock()
			b.urls = append(b.urls, p.Request.URL+p.URL)
			b.urlsMu.Unlock()
		}
	}
}

func (b *browser) send(t *testing.T, session, method string, params any) json.RawMessage {
	t.Helper()
	ch := make(chan cdpReply, 1)
	b.mu.Lock()
	b.nextID++
	id := b.nextID
	b.pending[id] = ch
	msg := map[string]any{"id": id, "method": method, "params": params}
	if session != "" {
		msg["sessionId"] = session
	}
	err := b.ws.WriteJSON(msg)
	b.mu.Unlock()
	if err != nil {
		t.Fatalf("DevTools %s: %v", method, err)
	}
	select {
	case r, ok := <-ch:
		if !ok {
			t.Fatalf("DevTools %s: the connection closed", method)
		}
		if r.Error != nil {
			t.Fatalf("DevTools %s: %s", method, r.Error.Message)
		}
		return r.Result
	case <-time.After(2 * time.Minute):
		t.Fatalf("DevTools %s: no answer within 2 minutes", method)
	}
	return nil
}

type page struct {
	b       *browser
	session string
}

func (b *browser) newPage(t *testing.T) *page {
	t.Helper()
	var target struct {
		TargetID string `json:"targetId"`
	}
	if err := json.Unmarshal(b.send(t, "", "Target.createTarget", map[string]any{"url": "about:blank"}), &target); err != nil {
		t.Fatal(err)
	}
	var att struct {
		SessionID string `json:"sessionId"`
	}
	if err := json.Unmarshal(b.send(t, "", "Target.attachToTarget", map[string]any{"targetId": target.TargetID, "flatten": true}), &att); err != nil {
		t.Fatal(err)
	}
	return &page{b: b, session: att.SessionID}
}

func (p *page) call(t *testing.T, method string, params any) json.RawMessage {
	t.Helper()
	if params == nil {
		params = map[string]any{}
	}
	return p.b.send(t, p.session, method, params)
}

// eval runs JavaScript in the page and returns its value (JSON).
func (p *page) eval(t *testing.T, expr string) json.RawMessage {
	t.Helper()
	var r struct {
		Result struct {
			Value json.RawMessage `json:"value"`
		} `json:"result"`
		ExceptionDetails *struct {
			Text      string `json:"text"`
			Exception struct {
				Description string `json:"description"`
			} `json:"exception"`
		} `json:"exceptionDetails"`
	}
	if err := json.Unmarshal(p.call(t, "Runtime.evaluate", map[string]any{"expression": expr, "returnByValue": true}), &r); err != nil {
		t.Fatal(err)
	}
	if r.ExceptionDetails != nil {
		t.Fatalf("%s: %s %s", expr, r.ExceptionDetails.Text, r.ExceptionDetails.Exception.Description)
	}
	return r.Result.Value
}

// waitJS polls a JavaScript condition until it is true; on timeout it shows the page's text.
func (p *page) waitJS(t *testing.T, what string, d time.Duration, cond string) {
	t.Helper()
	for deadline := time.Now().Add(d); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		if string(p.eval(t, "!!("+cond+")")) == "true" {
			return
		}
	}
	t.Fatalf("timed out after %v waiting for %s; the page shows:\n%s", d, what, p.eval(t, `document.body ? document.body.innerText.slice(0, 2000) : ''`))
}

func (p *page) requested() []string {
	p.b.urlsMu.Lock()
	defer p.b.urlsMu.Unlock()
	return append([]string(nil), p.b.urls...)
}
