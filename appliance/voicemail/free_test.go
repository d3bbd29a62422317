package voicemail

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/outpost-voice/outpost/appliance/store"
)

// Another node's copy of a message's audio (fetched to play it) is freed
// when the mark that the cloud took the message reaches this node, and
// not before.
func TestFreeAfterUpload(t *testing.T) {
	b, st := openBox(t, "node-2")
	m, err := b.Deposit(Deposit{Mailbox: "u-carol", Caller: "1001", Samples: make([]int16, 8000)})
	if err != nil {
		t.Fatal(err)
	}
	// The same audio left for dave: one file for both messages.
	twin, err := b.Deposit(Deposit{Mailbox: "u-dave", Caller: "1001", Samples: make([]int16, 8000)})
	if err != nil || twin.SHA256 != m.SHA256 {
		t.Fatalf("twin %+v, %v", twin, err)
	}
	if err := b.Free(m); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(b.path(m.SHA256)); err != nil {
		t.Fatalf("audio of a message not uploaded freed: %v", err)
	}
	// The mark as it arrives from the leader: in the store, then Free.
	if m, err = st.MarkVoicemail(m.ID, store.VoicemailUploaded, time.Now()); err != nil {
		t.Fatal(err)
	}
	if err := b.Free(m); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(b.path(m.SHA256)); err != nil {
		t.Fatalf("audio freed while the twin message, not uploaded, shares it: %v", err)
	}
	if twin, err = st.MarkVoicemail(twin.ID, store.VoicemailUploaded, time.Now()); err != nil {
		t.Fatal(err)
	}
	if err := b.Free(twin); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(b.path(m.SHA256)); !os.IsNotExist(err) {
		t.Fatalf("audio still there after both uploads (%v)", err)
	}
	if err := b.Free(m); err != nil {
		t.Errorf("freeing again: %v", err)
	}
}

// At start, a node deletes the audio of messages the cloud took while it
// was down (their marks reached its store, not its files) and temporary
// files a crash left; the audio of a message not uploaded, and a file of
// no known message, stay.
func TestSweep(t *testing.T) {
	b, st := openBox(t, "node-1")
	kept, err := b.Deposit(Deposit{Mailbox: "u-carol", Caller: "1001", Samples: make([]int16, 8000)})
	if err != nil {
		t.Fatal(err)
	}
	gone, err := b.Deposit(Deposit{Mailbox: "u-carol", Caller: "1002", Samples: make([]int16, 16000)})
	if err != nil {
		t.Fatal(err)
	}
	// The mark as it arrives while the node is down: in the store only.
	if _, err := st.MarkVoicemail(gone.ID, store.VoicemailUploaded, time.Now()); err != nil {
		t.Fatal(err)
	}
	stray := filepath.Join(b.dir, strings.Repeat("ab", 32)+".wav")
	temp := filepath.Join(b.dir, ".vm-123")
	for _, f := range []string{stray, temp} {
		if err := os.WriteFile(f, []byte("x"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	n, err := b.Sweep(context.Background())
	if err != nil || n != 2 {
		t.Fatalf("Sweep = %d, %v; want 2 files (the uploaded audio, the temporary file)", n, err)
	}
	for f, want := range map[string]bool{b.path(kept.SHA256): true, stray: true, b.path(gone.SHA256): false, temp: false} {
		if _, err := os.Stat(f); (err == nil) != want {
			t.Errorf("%s: exists %v, want %v", filepath.Base(f), err == nil, want)
		}
	}
}
