package cloud

import (
	"bytes"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/outpost-voice/outpost/cloudsync/protocol"
)

func testMessage(id, sum string) protocol.VoicemailMessage {
	return protocol.VoicemailMessage{ID: id, Mailbox: "u-carol", Caller: "1001", ReceivedAt: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC),
		DurationMS: 4000, SHA256: sum, Size: 10, Folder: "new", Node: "n1"}
}

// Audio is checked against its hash and stored once; messages are taken
// once by id, only with their audio; a retried batch gets its first
// answer; the admin lists each message once and serves its audio.
func TestVoicemailUpload(t *testing.T) {
	h := newHarness(t, Options{})
	c := h.pair("vm1")
	data, sum := testWAV("message one")
	other, otherSum := testWAV("message two")

	resp, body := h.sync(c, http.MethodPut, protocol.PathVoicemailAudio+sum, other, nil)
	wantStatus(t, "audio whose hash is another's", resp, body, http.StatusBadRequest)
	resp, body = h.sync(c, http.MethodPut, protocol.PathVoicemailAudio+"not-a-hash", data, nil)
	wantStatus(t, "audio named by no hash", resp, body, http.StatusBadRequest)
	resp, body = h.sync(c, http.MethodPut, protocol.PathVoicemailAudio+sum, data, nil)
	wantStatus(t, "audio", resp, body, http.StatusCreated)
	resp, body = h.sync(c, http.MethodPut, protocol.PathVoicemailAudio+sum, data, nil)
	wantStatus(t, "audio again", resp, body, http.StatusOK)

	key := http.Header{protocol.HeaderIdempotencyKey: {"k1"}}
	batch := protocol.VoicemailBatch{Messages: []protocol.VoicemailMessage{testMessage("m1", sum), testMessage("m2", otherSum)}}
	resp, body = h.sync(c, http.MethodPost, protocol.PathVoicemail, batch, key)
	wantStatus(t, "batch", resp, body, http.StatusOK)
	var r protocol.VoicemailReceipt
	decode(t, body, &r)
	if r.Accepted != 1 || !slices.Equal(r.Taken, []string{"m1"}) || !slices.Equal(r.MissingAudio, []string{"m2"}) {
		t.Fatalf("receipt %+v, want m1 taken and m2 missing its audio", r)
	}
	resp, body = h.sync(c, http.MethodPost, protocol.PathVoicemail, batch, key)
	wantStatus(t, "batch retried", resp, body, http.StatusOK)
	if resp.Header.Get(protocol.HeaderIdempotentReplayed) != "true" {
		t.Error("retried batch not marked replayed")
	}
	// The rest of the upload resumes: m2's audio, then a new batch with
	// both (m1 a duplicate).
	resp, body = h.sync(c, http.MethodPut, protocol.PathVoicemailAudio+otherSum, other, nil)
	wantStatus(t, "second audio", resp, body, http.StatusCreated)
	resp, body = h.sync(c, http.MethodPost, protocol.PathVoicemail, batch, http.Header{protocol.HeaderIdempotencyKey: {"k2"}})
	wantStatus(t, "batch resumed", resp, body, http.StatusOK)
	r = protocol.VoicemailReceipt{}
	decode(t, body, &r)
	if r.Accepted != 1 || r.Duplicates != 1 || len(r.Taken) != 2 || len(r.MissingAudio) != 0 {
		t.Fatalf("receipt %+v, want m2 accepted and m1 a duplicate", r)
	}

	bad := testMessage("m3", sum)
	bad.Folder = "trash"
	resp, body = h.sync(c, http.MethodPost, protocol.PathVoicemail, protocol.VoicemailBatch{Messages: []protocol.VoicemailMessage{testMessage("m4", sum), bad}},
		http.Header{protocol.HeaderIdempotencyKey: {"k3"}})
	wantStatus(t, "malformed batch", resp, body, http.StatusBadRequest)
	resp, body = h.sync(c, http.MethodPost, protocol.PathVoicemail, batch, nil)
	wantStatus(t, "batch without a key", resp, body, http.StatusBadRequest)

	resp, body = h.admin(http.MethodGet, "/v1/admin/voicemail?appliance=vm1", nil)
	wantStatus(t, "admin list", resp, body, http.StatusOK)
	var list struct{ Messages []protocol.VoicemailMessage }
	decode(t, body, &list)
	if len(list.Messages) != 2 || list.Messages[0].ID != "m1" || list.Messages[1].ID != "m2" {
		t.Fatalf("admin list %+v, want m1 and m2 once each (not m4 of the refused batch)", list.Messages)
	}
	// A message its owner deleted before the upload is kept as such.
	gone := testMessage("m5", sum)
	gone.Folder = protocol.FolderDeleted
	resp, body = h.sync(c, http.MethodPost, protocol.PathVoicemail, protocol.VoicemailBatch{Messages: []protocol.VoicemailMessage{gone}},
		http.Header{protocol.HeaderIdempotencyKey: {"k4"}})
	wantStatus(t, "a deleted message", resp, body, http.StatusOK)
	resp, body = h.admin(http.MethodGet, "/v1/admin/voicemail?appliance=vm1", nil)
	wantStatus(t, "admin list", resp, body, http.StatusOK)
	list.Messages = nil
	decode(t, body, &list)
	if len(list.Messages) != 3 || list.Messages[2].ID != "m5" || list.Messages[2].Folder != protocol.FolderDeleted {
		t.Fatalf("admin list %+v, want m5 last, in folder deleted", list.Messages)
	}
	resp, body = h.admin(http.MethodGet, "/v1/admin/voicemail/m2/audio", nil)
	wantStatus(t, "admin audio", resp, body, http.StatusOK)
	if !bytes.Equal(body, other) {
		t.Errorf("admin audio %q, want m2's", body)
	}
	resp, body = h.admin(http.MethodGet, "/v1/admin/voicemail/m9/audio", nil)
	wantStatus(t, "admin audio of no message", resp, body, http.StatusNotFound)
	resp, body = h.admin(http.MethodGet, "/v1/admin/voicemail?appliance=nobody", nil)
	wantStatus(t, "admin list of no appliance", resp, body, http.StatusNotFound)
}
