package node

import (
	"context"
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	"github.com/outpost-voice/outpost/appliance/registrar"
	"github.com/outpost-voice/outpost/appliance/store"
)

// The B2BUA finds a phone this node has just accepted before (or without)
// its group commit: the registrar's memory is merged with the store, one
// binding per ID, the newer winning.
func TestLiveDirectoryMergesTheRegistrarsMemory(t *testing.T) {
	st, err := store.Open(filepath.Join(t.TempDir(), "outpost.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	now := time.Now().UTC().Truncate(time.Millisecond)
	const aor = "alice@acme.example"
	binding := func(id, contact string, updated time.Time) store.Binding {
		return store.Binding{ID: id, AOR: aor, UserID: "u-alice", Username: "alice", Site: "hq",
			Contact: contact, CallID: "c-" + id, CSeq: 1, Transport: "udp", Source: "192.0.2.1:5060",
			Node: "n1", Expires: now.Add(time.Hour), UpdatedAt: updated}
	}
	// In the store: desk (older than memory's copy) and a softphone
	// memory does not hold (another node's, or not reloaded).
	if err := st.PutLocalBindings([]store.Binding{
		binding("desk", "sip:alice@192.0.2.1:5060", now.Add(-time.Minute)),
		binding("soft", "sip:alice@192.0.2.2:5060", now.Add(-time.Minute)),
	}); err != nil {
		t.Fatal(err)
	}
	// In memory: desk refreshed from a new port, and a mobile just
	// accepted, neither committed (nothing runs the location).
	loc := registrar.NewLocation(func([]store.Binding) error { return nil }, slog.New(slog.DiscardHandler))
	if _, err := loc.Update(aor, now, func([]store.Binding, func(string) int) ([]store.Binding, error) {
		return []store.Binding{binding("desk", "sip:alice@192.0.2.1:5070", now), binding("mobile", "sip:alice@192.0.2.3:5060", now)}, nil
	}); err != nil {
		t.Fatal(err)
	}
	d := liveDirectory{st.Reader(), loc}
	bs, err := d.Bindings(context.Background(), aor, now)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	var order []string
	for _, b := range bs {
		got[b.ID] = b.Contact
		order = append(order, b.ID)
	}
	want := map[string]string{"desk": "sip:alice@192.0.2.1:5070", "mobile": "sip:alice@192.0.2.3:5060", "soft": "sip:alice@192.0.2.2:5060"}
	if len(got) != len(want) || len(bs) != len(want) {
		t.Fatalf("bindings %v, want %v", got, want)
	}
	for id, c := range want {
		if got[id] != c {
			t.Errorf("%s: contact %q, want %q", id, got[id], c)
		}
	}
	if order[0] != "desk" || order[1] != "mobile" || order[2] != "soft" {
		t.Errorf("order %v, want sorted by ID", order)
	}
}
