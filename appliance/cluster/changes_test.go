package cluster

import (
	"context"
	"encoding/json"
	"errors"
	"testing"

	"github.com/outpost-voice/outpost/account"
	"github.com/outpost-voice/outpost/cloudsync/protocol"
)

// userOp is an op putting u.
func userOp(t *testing.T, u account.User) protocol.Op {
	t.Helper()
	data, err := json.Marshal(u)
	if err != nil {
		t.Fatal(err)
	}
	return protocol.Op{Op: protocol.OpPut, Kind: account.KindUsers, ID: u.ID, Data: data}
}

func TestFSMApplyChanges(t *testing.T) {
	f, st := newFSM(t)
	ctx := context.Background()
	if r := applyAt(f, 1, EncodeSnapshot(demoDoc(t, 1))); r[0].Err != nil {
		t.Fatal(r[0].Err)
	}
	users, err := st.Reader().Users(ctx)
	if err != nil || len(users) == 0 {
		t.Fatalf("users: %v, %v", users, err)
	}
	u := users[0]
	u.Name = "Renamed"
	gen := f.ConfigGeneration()
	cmd, err := EncodeChanges(1, 3, []protocol.Op{userOp(t, u)})
	if err != nil {
		t.Fatal(err)
	}
	if r := applyAt(f, 2, cmd); r[0].Err != nil || r[0].Revision != 3 {
		t.Fatalf("apply_changes = %+v, want revision 3", r[0])
	}
	if got := revision(t, st); got != 3 {
		t.Errorf("revision %d, want 3", got)
	}
	if got, err := st.Reader().UserByID(ctx, u.ID); err != nil || got.Name != "Renamed" {
		t.Errorf("user after the change = %+v, %v", got, err)
	}
	if f.ConfigGeneration() == gen {
		t.Error("the config generation did not move: readers would keep the old user")
	}

	// Changes from a base the node no longer serves are stale: nothing moves.
	u.Name = "Again"
	stale, _ := EncodeChanges(1, 4, []protocol.Op{userOp(t, u)})
	malformed := append([]byte{byte(CmdApplyChanges), commandVersion}, `{"base":3,"revision":4,"ops":[{"op":"put","kind":"users","id":"x","data":{"id":"x","shell":1}}]}`...)
	missing, _ := EncodeChanges(3, 4, []protocol.Op{{Op: protocol.OpDelete, Kind: account.KindTrunks, ID: "t-none"}})
	taken := users[1]
	taken.Extension = users[0].Extension
	conflict, _ := EncodeChanges(3, 4, []protocol.Op{userOp(t, taken)})
	for i, r := range applyAt(f, 3, stale, malformed, missing, conflict) {
		if r.Err == nil || r.Revision != 3 {
			t.Errorf("entry %d = %+v; want refused at revision 3", i, r)
		}
	}
	if errs := applyAt(f, 7, stale); !errors.Is(errs[0].Err, ErrStaleRevision) {
		t.Errorf("stale changes: %v, want ErrStaleRevision", errs[0].Err)
	}
	if err := f.Halted(); err != nil {
		t.Fatalf("a refused change halted the FSM: %v", err)
	}
	if got, _ := st.Reader().UserByID(ctx, u.ID); got.Name != "Renamed" {
		t.Errorf("a refused change moved the user: %+v", got)
	}
	if got := revision(t, st); got != 3 {
		t.Errorf("revision %d after refusals, want 3", got)
	}
}
