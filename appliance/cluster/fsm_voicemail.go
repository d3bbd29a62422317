package cluster

import (
	"encoding/json"
	"fmt"

	"github.com/outpost-voice/outpost/appliance/store"
)

// OnVoicemail sets the hook told, after each commit, of the voicemail
// messages the batch applied (message waiting on every node, and freeing
// the audio of messages the cloud took). It runs on raft's apply
// goroutine: it must hand the work off and return.
func (f *FSM) OnVoicemail(fn func([]store.VoicemailMessage)) {
	f.vmMu.Lock()
	f.vmHook = fn
	f.vmMu.Unlock()
}

// putVoicemail applies a CmdPutVoicemail and remembers its messages for
// the hook.
func (f *FSM) putVoicemail(tx *store.Tx, _ uint64, payload []byte) (ApplyResult, error) {
	var p PutVoicemail
	if err := json.Unmarshal(payload, &p); err != nil {
		return ApplyResult{Revision: f.revision.Load(), Err: fmt.Errorf("%w: decode %s: %v", ErrMalformedCommand, CmdPutVoicemail, err)}, nil
	}
	if err := tx.PutVoicemail(p.Messages); refused(err) {
		return ApplyResult{Revision: f.revision.Load(), Err: err}, nil
	} else if err != nil {
		return ApplyResult{}, err
	}
	f.vmApplied = append(f.vmApplied, p.Messages...)
	return ApplyResult{Revision: f.revision.Load()}, nil
}

// voicemailCommitted hands the committed batch's messages to the hook.
func (f *FSM) voicemailCommitted(committed bool) {
	ms := f.vmApplied
	f.vmApplied = nil
	if !committed || len(ms) == 0 {
		return
	}
	f.vmMu.Lock()
	hook := f.vmHook
	f.vmMu.Unlock()
	if hook != nil {
		hook(ms)
	}
}
