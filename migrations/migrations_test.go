package migrations

import (
	"strings"
	"testing"
	"testing/fstest"
)

func TestAllInVersionOrder(t *testing.T) {
	all, err := All()
	if err != nil {
		t.Fatal(err)
	}
	if len(all) < 3 || all[0].Version != 1 || !strings.Contains(all[0].SQL, "CREATE TABLE indexer.head") {
		t.Fatalf("migrations: %+v", all)
	}
	for i := 1; i < len(all); i++ {
		if all[i].Version <= all[i-1].Version {
			t.Fatalf("%s after %s", all[i].Name, all[i-1].Name)
		}
	}
}

func TestLoadRejectsBadNames(t *testing.T) {
	for name, fs := range map[string]fstest.MapFS{
		"no number":  {"init.sql": {Data: []byte("")}},
		"duplicate":  {"0001_a.sql": {Data: []byte("")}, "1_b.sql": {Data: []byte("")}},
		"zero":       {"0000_a.sql": {Data: []byte("")}},
		"not number": {"x1_a.sql": {Data: []byte("")}},
	} {
		if _, err := load(fs); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	got, err := load(fstest.MapFS{"0010_b.sql": {Data: []byte("b")}, "0002_a.sql": {Data: []byte("a")}})
	if err != nil || got[0].Name != "0002_a.sql" || got[1].Version != 10 {
		t.Fatalf("order: %+v %v", got, err)
	}
}
