package sqlitemig

import (
	"testing"
	"testing/fstest"
)

func TestLoad(t *testing.T) {
	ms, err := Load(fstest.MapFS{
		"migrations/0002_b.sql": {Data: []byte("SELECT 2;")},
		"migrations/0001_a.sql": {Data: []byte("SELECT 1;")},
	})
	if err != nil || len(ms) != 2 || ms[0].Name != "0001_a.sql" || ms[1].Version != 2 || Latest(ms) != 2 {
		t.Fatalf("Load = %+v, %v", ms, err)
	}
	bad := map[string]fstest.MapFS{
		"gap": {
			"migrations/0001_a.sql": {Data: []byte("SELECT 1;")},
			"migrations/0003_c.sql": {Data: []byte("SELECT 1;")},
		},
		"duplicate": {
			"migrations/0001_a.sql": {Data: []byte("SELECT 1;")},
			"migrations/0001_b.sql": {Data: []byte("SELECT 1;")},
		},
		"bad name": {"migrations/first.sql": {Data: []byte("SELECT 1;")}},
		"none":     {},
	}
	for name, fsys := range bad {
		if _, err := Load(fsys); err == nil {
			t.Errorf("%s: Load succeeded, want an error", name)
		}
	}
}
