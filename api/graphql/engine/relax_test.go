package engine

import (
	"strings"
	"testing"
	"unicode/utf8"

	gqlerrors "github.com/graph-gophers/graphql-go/errors"
)

// TestRelaxedLocations: the re-declared text differs in length from the one sent, so the
// locations graphql-go reports on it are moved back to where they are in the text as sent.
func TestRelaxedLocations(t *testing.T) {
	text := "query Q($o: String, $d: String!) { events(orderBy: $o, orderDirection: $d) { id } }\n  # é\n{ x }"
	offs := newOffsets(text)
	var r relaxation
	for _, c := range []struct{ after, repl string }{{"$o: ", "Event_orderBy"}, {"$d: ", "OrderDirection"}} {
		at := strings.Index(text, c.after) + len(c.after)
		ed, ok := offs.edit(utf8.RuneCountInString(text[:at]), "String", c.repl)
		if !ok {
			t.Fatalf("no edit at %d", at)
		}
		r.edits = append(r.edits, ed)
	}
	relaxed := r.apply(text)
	if want := "query Q($o: Event_orderBy, $d: OrderDirection!) { events(orderBy: $o, orderDirection: $d) { id } }\n  # é\n{ x }"; relaxed != want {
		t.Fatalf("apply: %q", relaxed)
	}
	col := func(s, tok string) int { return strings.Index(s, tok) + 1 } // line 1 is ASCII
	for _, tok := range []string{"query", "$d", "events", "orderDirection:", "id }"} {
		errs := []*gqlerrors.QueryError{{Locations: []gqlerrors.Location{{Line: 1, Column: col(relaxed, tok)}, {Line: 3, Column: 1}}}}
		r.locate(errs)
		if got := errs[0].Locations; got[0].Column != col(text, tok) || got[1] != (gqlerrors.Location{Line: 3, Column: 1}) {
			t.Errorf("%s: at %v, want 1:%d", tok, got, col(text, tok))
		}
	}
	// Inside an edit: its start.
	errs := []*gqlerrors.QueryError{{Locations: []gqlerrors.Location{{Line: 1, Column: col(relaxed, "orderBy,")}}}}
	r.locate(errs)
	if got, want := errs[0].Locations[0].Column, col(text, "String,"); got != want {
		t.Errorf("inside an edit: column %d, want %d", got, want)
	}
	// A position in runes past a multi-byte character maps to its byte.
	o := newOffsets("é$x")
	if b := o.byteAt(1); b != 2 {
		t.Errorf("byteAt(1) = %d, want 2", b)
	}
}
