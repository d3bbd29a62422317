package cluster

import (
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/outpost-voice/outpost/account"
	"github.com/outpost-voice/outpost/appliance/store"
	"github.com/outpost-voice/outpost/cloudsync/protocol"
)

func overrideCmd(t testing.TB, sdg string, r *account.Route, rev int64) []byte {
	t.Helper()
	cmd, err := EncodeSDGOverride(store.SDGOverride{SDGID: sdg, Route: r, By: "admin", At: time.Date(2026, 11, 23, 9, 0, 0, 0, time.UTC), Revision: rev})
	if err != nil {
		t.Fatal(err)
	}
	return cmd
}

// set_sdg_override sets a valid override and moves the config
// generation; an invalid route, an unknown SDG or a stale revision is the
// command's answer and changes nothing; a newer revision that changes
// the SDG drops the override in its own transaction.
func TestFSMSetSDGOverride(t *testing.T) {
	f, st := newFSM(t)
	if r := applyAt(f, 1, EncodeSnapshot(demoDoc(t, 1))); r[0].Err != nil {
		t.Fatal(r[0].Err)
	}
	count := func() int {
		t.Helper()
		os, err := st.Reader().SDGOverrides(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		return len(os)
	}
	if CmdSetSDGOverride.String() != "set_sdg_override" || CmdSetSDGOverride&IgnorableFlag != 0 {
		t.Errorf("type %d %s: want set_sdg_override, not ignorable", CmdSetSDGOverride, CmdSetSDGOverride)
	}
	gen := f.ConfigGeneration()
	res := applyAt(f, 2,
		overrideCmd(t, "sdg-frontdesk", &account.Route{Type: "user", ID: "u-carol"}, 1),
		overrideCmd(t, "sdg-operator", &account.Route{Type: "user", ID: "u-zed"}, 1),
		overrideCmd(t, "sdg-nope", &account.Route{Type: "user", ID: "u-bob"}, 1),
		overrideCmd(t, "sdg-operator", &account.Route{Type: "user", ID: "u-bob"}, 7),
		append([]byte{byte(CmdSetSDGOverride), commandVersion}, `{"sdg_id":7}`...),
	)
	if res[0].Err != nil || count() != 1 || f.ConfigGeneration() == gen {
		t.Fatalf("valid override: %v, %d stored, generation %d -> %d", res[0].Err, count(), gen, f.ConfigGeneration())
	}
	for i, want := range []error{store.ErrInvalidOverride, store.ErrUnknownSDG, ErrStaleRevision, ErrMalformedCommand} {
		if !errors.Is(res[i+1].Err, want) {
			t.Errorf("command %d: %v, want %v", i+1, res[i+1].Err, want)
		}
	}
	if f.Halted() != nil || count() != 1 {
		t.Fatalf("after refusals: halted %v, %d stored", f.Halted(), count())
	}

	// Revision 2 is the demo again: the front desk is unchanged, so the
	// override stays; revision 3 changes it, so the override goes.
	if r := applyAt(f, 7, EncodeSnapshot(demoDoc(t, 2))); r[0].Err != nil || count() != 1 {
		t.Fatalf("a revision not touching the SDG: %v, %d stored, want 1", r[0].Err, count())
	}
	snap, err := account.DecodeBytes(demoDoc(t, 3))
	if err != nil {
		t.Fatal(err)
	}
	snap.SDGs[0].Name = "Reception"
	doc, err := snap.Encode()
	if err != nil {
		t.Fatal(err)
	}
	if r := applyAt(f, 8, EncodeSnapshot(doc)); r[0].Err != nil || count() != 0 {
		t.Fatalf("a revision changing the SDG: %v, %d stored, want 0", r[0].Err, count())
	}

	// Cleared by a null route; apply_changes putting the SDG supersedes.
	if r := applyAt(f, 9, overrideCmd(t, "sdg-operator", &account.Route{Type: "user", ID: "u-bob"}, 3),
		overrideCmd(t, "sdg-operator", nil, 3)); r[0].Err != nil || r[1].Err != nil || count() != 0 {
		t.Fatalf("set then clear: %v, %v, %d stored", r[0].Err, r[1].Err, count())
	}
	if r := applyAt(f, 11, overrideCmd(t, "sdg-operator", &account.Route{Type: "user", ID: "u-bob"}, 3)); r[0].Err != nil {
		t.Fatal(r[0].Err)
	}
	data, err := json.Marshal(snap.SDGs[1])
	if err != nil {
		t.Fatal(err)
	}
	cmd, err := EncodeChanges(3, 4, []protocol.Op{{Op: protocol.OpPut, Kind: account.KindSDGs, ID: "sdg-operator", Data: data}})
	if err != nil {
		t.Fatal(err)
	}
	if r := applyAt(f, 12, cmd); r[0].Err != nil || count() != 0 {
		t.Fatalf("changes putting the SDG: %v, %d stored, want 0", r[0].Err, count())
	}
}
