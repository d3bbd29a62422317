package voicemail

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/outpost-voice/outpost/appliance/store"
)

// Free deletes this node's copy of m's audio once the cloud took m
// (m.UploadedAt set): every node calls it for the uploaded messages it
// learns of, so the space is freed wherever a copy was kept. A message
// not uploaded keeps its audio, and so does another message with the same
// audio (one file) that is not uploaded yet.
func (b *Box) Free(m store.VoicemailMessage) error {
	if m.UploadedAt.IsZero() || len(m.SHA256) != 64 {
		return nil
	}
	if all, err := b.st.Reader().VoicemailAudioUploaded(context.Background(), m.SHA256); err != nil || !all {
		return err
	}
	if err := os.Remove(b.path(m.SHA256)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("voicemail: free audio of %s: %w", m.ID, err)
	}
	return nil
}

// Sweep deletes, at start, the files a node must not keep: the audio of
// messages the cloud took while this node was down (it missed their marks)
// and temporary files a crash left half written. Audio of messages not
// uploaded, and files of no known message, stay. It returns how many files
// it deleted.
func (b *Box) Sweep(ctx context.Context) (int, error) {
	uploaded, err := b.st.Reader().UploadedVoicemailAudio(ctx)
	if err != nil {
		return 0, fmt.Errorf("voicemail: sweep: %w", err)
	}
	entries, err := os.ReadDir(b.dir)
	if err != nil {
		return 0, fmt.Errorf("voicemail: sweep: %w", err)
	}
	freed := 0
	for _, e := range entries {
		name := e.Name()
		hash, isAudio := strings.CutSuffix(name, ".wav")
		if !(isAudio && uploaded[hash]) && !strings.HasPrefix(name, ".vm-") {
			continue
		}
		if err := os.Remove(filepath.Join(b.dir, name)); err != nil && !errors.Is(err, os.ErrNotExist) {
			return freed, fmt.Errorf("voicemail: sweep: %w", err)
		}
		freed++
	}
	if freed > 0 {
		b.log.Info("voicemail: swept files of uploaded messages and unfinished writes", "files", freed)
	}
	return freed, nil
}
