package voicemail

import (
	"errors"
	"fmt"
	"os"

	"github.com/outpost-voice/outpost/appliance/store"
)

// Free deletes this node's copy of m's audio once the cloud took m
// (m.UploadedAt set): every node calls it for the uploaded messages it
// learns of, so the space is freed wherever a copy was kept. A message
// not uploaded keeps its audio.
func (b *Box) Free(m store.VoicemailMessage) error {
	if m.UploadedAt.IsZero() || len(m.SHA256) != 64 {
		return nil
	}
	if err := os.Remove(b.path(m.SHA256)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("voicemail: free audio of %s: %w", m.ID, err)
	}
	return nil
}
