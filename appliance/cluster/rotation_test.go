package cluster

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/outpost-voice/outpost/appliance/store"
)

func rotationCmd(t testing.TB, member string, at time.Time) []byte {
	t.Helper()
	cmd, err := EncodeRotation(store.Rotation{Group: "sdg:sdg-sales/route", Member: member, At: at})
	if err != nil {
		t.Fatal(err)
	}
	return cmd
}

// put_rotation keeps each group's newest rotation: a command that arrives
// late, older than what the group holds, changes nothing; a payload that
// does not decode, or lacks a field, is refused loudly (the command's
// answer) and changes nothing, and the FSM goes on. Each applied rotation
// moves RotationsGeneration; the config generation stays.
func TestFSMPutRotation(t *testing.T) {
	f, st := newFSM(t)
	ctx := t.Context()
	t0 := time.Date(2026, 11, 23, 9, 0, 0, 0, time.UTC)
	last := func() store.Rotation {
		t.Helper()
		r, err := st.Reader().Rotation(ctx, "sdg:sdg-sales/route")
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	gen, cfg := f.RotationsGeneration(), f.ConfigGeneration()

	res := applyAt(f, 1, rotationCmd(t, "u-bob", t0.Add(2*time.Second)))
	if res[0].Err != nil || last().Member != "u-bob" {
		t.Fatalf("first rotation: %+v, stored %+v", res[0], last())
	}
	if f.RotationsGeneration() == gen || f.ConfigGeneration() != cfg {
		t.Errorf("generations: rotations %d -> %d, config %d -> %d; want only rotations to move",
			gen, f.RotationsGeneration(), cfg, f.ConfigGeneration())
	}
	// Late and older, then newer, in one batch.
	res = applyAt(f, 2, rotationCmd(t, "u-carol", t0.Add(time.Second)), rotationCmd(t, "u-dave", t0.Add(3*time.Second)),
		rotationCmd(t, "u-erin", t0.Add(2500*time.Millisecond)))
	for i, r := range res {
		if r.Err != nil {
			t.Errorf("command %d: %v (an older rotation is not an error, it just loses)", i, r.Err)
		}
	}
	if got, want := last(), (store.Rotation{Group: "sdg:sdg-sales/route", Member: "u-dave", At: t0.Add(3 * time.Second)}); got != want {
		t.Errorf("after a late older write: %+v, want %+v", got, want)
	}

	for name, entry := range map[string][]byte{
		"not JSON":   {byte(CmdPutRotation), commandVersion, '{'},
		"wrong type": append([]byte{byte(CmdPutRotation), commandVersion}, `{"group":"g","member":7,"at":"2026-11-23T10:00:00Z"}`...),
		"bad time":   append([]byte{byte(CmdPutRotation), commandVersion}, `{"group":"sdg:sdg-sales/route","member":"u-zed","at":"soon"}`...),
	} {
		gen := f.RotationsGeneration()
		res := applyAt(f, f.AppliedIndex()+1, entry)[0]
		if !errors.Is(res.Err, ErrMalformedCommand) || !strings.Contains(res.Err.Error(), "decode store.Rotation") {
			t.Errorf("%s: %v, want a malformed command naming the payload", name, res.Err)
		}
		if f.RotationsGeneration() != gen {
			t.Errorf("%s: a refused rotation moved the generation", name)
		}
	}
	missing := append([]byte{byte(CmdPutRotation), commandVersion}, `{"group":"sdg:sdg-sales/route","at":"2026-11-23T10:00:00Z"}`...)
	if res := applyAt(f, f.AppliedIndex()+1, missing)[0]; !errors.Is(res.Err, store.ErrInvalidRotation) {
		t.Errorf("no member: %v, want ErrInvalidRotation", res.Err)
	}
	if f.Halted() != nil {
		t.Fatalf("halted: %v", f.Halted())
	}
	if got := last(); got.Member != "u-dave" {
		t.Errorf("refused commands changed the rotation to %+v", got)
	}
}

// put_rotation is ignorable: a node that does not know it skips it.
func TestPutRotationIsIgnorable(t *testing.T) {
	if CmdPutRotation&IgnorableFlag == 0 || CmdPutRotation&^IgnorableFlag != 13 || CmdPutRotation.String() != "put_rotation" {
		t.Fatalf("CmdPutRotation = %#x (%s), want 13 with the ignorable flag", uint8(CmdPutRotation), CmdPutRotation)
	}
	// As a node without the handler sees it.
	saved := handlers
	t.Cleanup(func() { handlers = saved })
	handlers = commandHandlers()
	delete(handlers, CmdPutRotation)
	f, st := newFSM(t)
	res := applyAt(f, 1, rotationCmd(t, "u-bob", time.Unix(1, 0)))
	if res[0].Err != nil || f.Halted() != nil || f.AppliedIndex() != 1 {
		t.Fatalf("unknown put_rotation: %+v, halted %v, applied %d; want skipped", res[0], f.Halted(), f.AppliedIndex())
	}
	if rs, _ := st.Reader().Rotations(t.Context()); len(rs) != 0 {
		t.Errorf("skipped command stored %+v", rs)
	}
}

func TestEncodeAndCheckRotation(t *testing.T) {
	at := time.Date(2026, 11, 23, 10, 0, 0, 0, time.FixedZone("X", 3600))
	cmd, err := EncodeRotation(store.Rotation{Group: "sdg:sdg-sales/route", Member: "u-bob", At: at})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := string(cmd[2:]), `{"group":"sdg:sdg-sales/route","member":"u-bob","at":"2026-11-23T09:00:00Z"}`; got != want {
		t.Errorf("payload %s, want %s", got, want)
	}
	if err := CheckShared(cmd); err != nil {
		t.Errorf("CheckShared: %v", err)
	}
	for _, r := range []store.Rotation{{Member: "u-bob", At: at}, {Group: "g", At: at}, {Group: "g", Member: "u-bob"}} {
		if _, err := EncodeRotation(r); err == nil {
			t.Errorf("EncodeRotation(%+v) succeeded", r)
		}
	}
	for name, payload := range map[string]string{
		"no member":     `{"group":"g","at":"2026-11-23T10:00:00Z"}`,
		"no time":       `{"group":"g","member":"u-bob"}`,
		"unknown field": `{"group":"g","member":"u-bob","at":"2026-11-23T10:00:00Z","x":1}`,
		"not JSON":      `{`,
	} {
		if err := CheckShared(append([]byte{byte(CmdPutRotation), commandVersion}, payload...)); !errors.Is(err, ErrMalformedCommand) {
			t.Errorf("%s: %v, want ErrMalformedCommand", name, err)
		}
	}
}
