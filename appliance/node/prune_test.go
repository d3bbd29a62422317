package node

import (
	"testing"
	"time"

	"github.com/outpost-voice/outpost/appliance/cluster"
	"github.com/outpost-voice/outpost/appliance/store"
)

// A one-node cluster prunes registrations that lapsed more than the
// retention ago, in its own table and (as the leader) through Raft in the
// replicated one, and keeps the others.
func TestPruneExpiredRegistrations(t *testing.T) {
	n, ctx := startJournalNode(t)

	now := time.Now().UTC().Truncate(time.Millisecond)
	binding := func(id string, expires time.Time, deleted bool) store.Binding {
		return store.Binding{ID: id, AOR: id + "@acme.example", UserID: "u-" + id, Username: id, Site: "hq",
			Contact: "sip:" + id + "@192.0.2.1", CallID: "c-" + id, CSeq: 1, Transport: "udp",
			Source: "192.0.2.1:5060", Node: "n1", Expires: expires, UpdatedAt: expires.Add(-time.Minute), Deleted: deleted}
	}
	old := now.Add(-pruneRetention - time.Minute)
	rows := []store.Binding{
		binding("lapsed", old, false),
		binding("removed", old, true),
		binding("recent", now.Add(-time.Minute), false), // expired, but within the retention
		binding("live", now.Add(time.Hour), false),
	}
	if err := n.store.PutLocalBindings(rows); err != nil {
		t.Fatal(err)
	}
	cmd, err := cluster.EncodeBindings(rows)
	if err != nil {
		t.Fatal(err)
	}
	if res, err := n.cluster.Apply(ctx, cmd); err != nil || res.Err != nil {
		t.Fatalf("share: %v %v", err, res.Err)
	}
	before := n.cluster.Stats()
	if err := n.prune(ctx, now); err != nil {
		t.Fatal(err)
	}
	local, err := n.store.Reader().LocalBindings(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var kept []string
	for _, b := range local {
		kept = append(kept, b.ID)
	}
	if len(kept) != 2 || kept[0] == "lapsed" || kept[1] == "lapsed" || kept[0] == "removed" || kept[1] == "removed" {
		t.Errorf("local bindings kept %v, want recent and live", kept)
	}
	// Seen from before it lapsed, the binding is gone from both tables.
	if bs, err := n.store.Reader().Bindings(ctx, "lapsed@acme.example", old.Add(-2*time.Hour)); err != nil || len(bs) != 0 {
		t.Errorf("lapsed binding still stored: %v %v", bs, err)
	}
	if bs, err := n.store.Reader().Bindings(ctx, "recent@acme.example", old); err != nil || len(bs) != 1 {
		t.Errorf("recent binding: %v %v, want it kept", bs, err)
	}
	if after := n.cluster.Stats(); after.AppliedIndex <= before.AppliedIndex {
		t.Errorf("no prune command applied through Raft (applied index %d -> %d)", before.AppliedIndex, after.AppliedIndex)
	}
}
