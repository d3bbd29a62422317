package store

import (
	"context"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"
)

func vmMessage(id, mailbox string, received time.Time) VoicemailMessage {
	return VoicemailMessage{ID: id, Mailbox: mailbox, Caller: "+16505550199", CallerName: "Pat", CallRecord: "rec-" + id,
		ReceivedAt: received, DurationMS: 4200, SHA256: strings.Repeat("ab", 32), Size: 67244, Node: "node-1",
		Folder: FolderNew, UpdatedAt: received}
}

func ids(ms []VoicemailMessage) []string {
	out := []string{}
	for _, m := range ms {
		out = append(out, m.ID+":"+m.Folder)
	}
	return out
}

// A message goes new -> saved -> deleted; each change is idempotent, is
// written to the local table with a newer version for the sharer, and
// the mailbox lists new first, then saved, oldest first.
func TestVoicemailStates(t *testing.T) {
	s := openTest(t)
	ctx := context.Background()
	r := s.Reader()
	t0 := time.Date(2026, 11, 20, 9, 0, 0, 0, time.UTC)
	if err := s.PutLocalVoicemail([]VoicemailMessage{vmMessage("m1", "u-alice", t0), vmMessage("m2", "u-alice", t0.Add(time.Minute)),
		vmMessage("m3", "u-bob", t0)}); err != nil {
		t.Fatal(err)
	}
	got, err := r.Mailbox(ctx, "u-alice")
	if err != nil || !reflect.DeepEqual(ids(got), []string{"m1:new", "m2:new"}) {
		t.Fatalf("Mailbox = %v, %v", ids(got), err)
	}
	if got[0] != vmMessage("m1", "u-alice", t0) {
		t.Errorf("read back %+v", got[0])
	}
	now := t0.Add(time.Hour)
	for range 2 { // twice: the second is a no-op
		m, err := s.MarkVoicemail("m1", VoicemailSaved, now)
		if err != nil || m.Folder != FolderSaved {
			t.Fatalf("MarkVoicemail saved = %+v, %v", m, err)
		}
	}
	got, _ = r.Mailbox(ctx, "u-alice")
	if !reflect.DeepEqual(ids(got), []string{"m2:new", "m1:saved"}) {
		t.Fatalf("after saving m1: %v", ids(got))
	}
	if n, sv, err := r.MailboxCounts(ctx, "u-alice"); n != 1 || sv != 1 || err != nil {
		t.Fatalf("MailboxCounts = %d, %d, %v", n, sv, err)
	}
	if _, err := s.MarkVoicemail("m1", VoicemailDeleted, now.Add(time.Second)); err != nil {
		t.Fatal(err)
	}
	got, _ = r.Mailbox(ctx, "u-alice")
	if !reflect.DeepEqual(ids(got), []string{"m2:new"}) {
		t.Fatalf("after deleting m1: %v", ids(got))
	}
	m1, err := r.VoicemailByID(ctx, "m1")
	if err != nil || !m1.Deleted || m1.Folder != FolderSaved || !m1.UpdatedAt.Equal(now.Add(time.Second)) {
		t.Fatalf("VoicemailByID(m1) = %+v, %v", m1, err)
	}
	// The sharer finds the change after the original version.
	since, err := r.LocalVoicemailSince(ctx, t0.Add(30*time.Minute))
	if err != nil || len(since) != 1 || since[0].ID != "m1" || !since[0].Deleted {
		t.Fatalf("LocalVoicemailSince = %+v, %v", since, err)
	}
	if _, err := s.MarkVoicemail("nope", VoicemailSaved, now); !errors.Is(err, ErrNoVoicemail) {
		t.Fatalf("MarkVoicemail(unknown) = %v, want ErrNoVoicemail", err)
	}
	if _, err := r.VoicemailByID(ctx, "nope"); !errors.Is(err, ErrNoVoicemail) {
		t.Fatalf("VoicemailByID(unknown) = %v", err)
	}
	// Pending uploads: not uploaded, deleted ones included, oldest first.
	pend, err := r.PendingVoicemailUploads(ctx, 0)
	if err != nil || !reflect.DeepEqual(ids(pend), []string{"m1:saved", "m3:new", "m2:new"}) || !pend[0].Deleted {
		t.Fatalf("PendingVoicemailUploads = %v, %v", ids(pend), err)
	}
	if n, err := r.CountPendingVoicemailUploads(ctx); err != nil || n != 3 {
		t.Fatalf("CountPendingVoicemailUploads = %d, %v; want 3", n, err)
	}
	up, err := s.MarkVoicemail("m2", VoicemailUploaded, now)
	if err != nil || !up.UploadedAt.Equal(now) {
		t.Fatalf("uploaded: %+v, %v", up, err)
	}
	again, _ := s.MarkVoicemail("m2", VoicemailUploaded, now.Add(time.Hour))
	if !again.UploadedAt.Equal(now) {
		t.Errorf("a second upload mark moved uploaded_at to %v", again.UploadedAt)
	}
	pend, _ = r.PendingVoicemailUploads(ctx, 0)
	if !reflect.DeepEqual(ids(pend), []string{"m1:saved", "m3:new"}) {
		t.Fatalf("pending after upload: %v", ids(pend))
	}
}

// Replicated copies merge with the local ones by the state's maximum, in
// any order and any number of times: a saved or deleted message never
// comes back as new, and what a message says is the first write's.
func TestVoicemailReplicatedMerge(t *testing.T) {
	t0 := time.Date(2026, 11, 20, 9, 0, 0, 0, time.UTC)
	orig := vmMessage("m1", "u-alice", t0)
	saved := orig
	saved.Folder, saved.UpdatedAt = FolderSaved, t0.Add(time.Minute)
	deleted := orig
	deleted.Deleted, deleted.UpdatedAt = true, t0.Add(2*time.Minute)
	liar := orig
	liar.Caller, liar.UpdatedAt = "+19995550000", t0.Add(3*time.Minute) // what a message says never changes
	orders := [][]VoicemailMessage{
		{orig, saved, deleted, liar},
		{deleted, liar, saved, orig},
		{saved, deleted, orig, deleted, saved, liar},
	}
	for i, order := range orders {
		s := openTest(t)
		ctx := context.Background()
		// The recording node's own copy first, then the cluster's in order.
		if err := s.PutLocalVoicemail([]VoicemailMessage{orig}); err != nil {
			t.Fatal(err)
		}
		for _, m := range order {
			if err := s.Write(func(tx *Tx) error { return tx.PutVoicemail([]VoicemailMessage{m}) }); err != nil {
				t.Fatal(err)
			}
		}
		got, err := s.Reader().VoicemailByID(ctx, "m1")
		if err != nil {
			t.Fatal(err)
		}
		want := orig
		want.Folder, want.Deleted, want.UpdatedAt = FolderSaved, true, t0.Add(3*time.Minute)
		if got != want {
			t.Errorf("order %d: merged %+v, want %+v", i, got, want)
		}
		if box, _ := s.Reader().Mailbox(ctx, "u-alice"); len(box) != 0 {
			t.Errorf("order %d: a deleted message is listed: %v", i, ids(box))
		}
	}
}

func TestVoicemailInvalid(t *testing.T) {
	s := openTest(t)
	t0 := time.Now()
	good := vmMessage("ok", "u-alice", t0)
	for name, mutate := range map[string]func(*VoicemailMessage){
		"no id":      func(m *VoicemailMessage) { m.ID = "" },
		"no mailbox": func(m *VoicemailMessage) { m.Mailbox = "" },
		"no time":    func(m *VoicemailMessage) { m.ReceivedAt = time.Time{} },
		"bad hash":   func(m *VoicemailMessage) { m.SHA256 = "abc" },
		"bad folder": func(m *VoicemailMessage) { m.Folder = "old" },
	} {
		bad := good
		bad.ID = "bad"
		mutate(&bad)
		err := s.PutLocalVoicemail([]VoicemailMessage{good, bad})
		if !errors.Is(err, ErrInvalidVoicemail) {
			t.Errorf("%s: err = %v, want ErrInvalidVoicemail", name, err)
		}
	}
	if box, _ := s.Reader().Mailbox(context.Background(), "u-alice"); len(box) != 0 {
		t.Errorf("a refused batch wrote %v", ids(box))
	}
}
