package cluster

import (
	"errors"
	"testing"
	"time"

	"github.com/outpost-voice/outpost/appliance/store"
)

// The FSM tells its voicemail hook, after the commit, of the messages a
// batch applied; a message the store refuses is the command's answer (the
// FSM goes on) and reaches no hook.
func TestFSMVoicemailHook(t *testing.T) {
	at := time.Date(2026, 11, 23, 9, 0, 0, 0, time.UTC)
	m := store.VoicemailMessage{ID: "vm-1", Mailbox: "u-alice", Caller: "bob", ReceivedAt: at,
		SHA256: "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef", Node: "n1",
		Folder: store.FolderNew, UpdatedAt: at}
	f, _ := newFSM(t)
	var got [][]store.VoicemailMessage
	f.OnVoicemail(func(ms []store.VoicemailMessage) { got = append(got, ms) })
	good, err := EncodeVoicemail([]store.VoicemailMessage{m})
	if err != nil {
		t.Fatal(err)
	}
	bad := m
	bad.ID, bad.Folder = "vm-2", "trash"
	refusedCmd, _ := Encode(CmdPutVoicemail, PutVoicemail{Messages: []store.VoicemailMessage{bad}})
	res := applyAt(f, 1, good, refusedCmd)
	if res[0].Err != nil || !errors.Is(res[1].Err, store.ErrInvalidVoicemail) {
		t.Fatalf("results %+v, want the first applied and the second refused", res)
	}
	if f.Halted() != nil {
		t.Fatalf("halted on an invalid message: %v", f.Halted())
	}
	if len(got) != 1 || len(got[0]) != 1 || got[0][0].ID != "vm-1" {
		t.Fatalf("hook got %+v, want vm-1 once", got)
	}
	applyAt(f, 3, mustEncode(t, CmdSetMode, ModeChange{Mode: "normal", Since: at}))
	if len(got) != 1 {
		t.Errorf("hook called for a batch without voicemail: %+v", got)
	}
}
