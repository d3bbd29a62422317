package voicemail

import (
	"os"
	"testing"
	"time"
)

// Another node's copy of a message's audio (fetched to play it) is freed
// when the mark that the cloud took the message reaches this node, and
// not before.
func TestFreeAfterUpload(t *testing.T) {
	b, _ := openBox(t, "node-2")
	m, err := b.Deposit(Deposit{Mailbox: "u-carol", Caller: "1001", Samples: make([]int16, 8000)})
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Free(m); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(b.path(m.SHA256)); err != nil {
		t.Fatalf("audio of a message not uploaded freed: %v", err)
	}
	m.UploadedAt = time.Now()
	if err := b.Free(m); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(b.path(m.SHA256)); !os.IsNotExist(err) {
		t.Fatalf("audio still there after the upload (%v)", err)
	}
	if err := b.Free(m); err != nil {
		t.Errorf("freeing again: %v", err)
	}
}
