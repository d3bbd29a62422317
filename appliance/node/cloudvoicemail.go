package node

import (
	"context"
	"fmt"

	"github.com/outpost-voice/outpost/appliance/store"
	"github.com/outpost-voice/outpost/cloudsync/protocol"
)

// cloudVoicemail is the mailboxes as the voicemail uploader sees it (the leader's): the
// messages the cloud has not taken, their audio from this node or the
// node that recorded it, and the mark that frees the audio, here at once
// and on every other node when the mark reaches it (voicemailApplied).
type cloudVoicemail struct{ n *Node }

func (c cloudVoicemail) PendingVoicemail(ctx context.Context, limit int) ([]protocol.VoicemailMessage, error) {
	ms, err := c.n.voicemail.box.Pending(ctx, limit)
	if err != nil {
		return nil, err
	}
	out := make([]protocol.VoicemailMessage, len(ms))
	for i, m := range ms {
		folder := m.Folder
		if m.Deleted {
			folder = protocol.FolderDeleted
		}
		out[i] = protocol.VoicemailMessage{ID: m.ID, Mailbox: m.Mailbox, Caller: m.Caller, CallerName: m.CallerName,
			CallRecord: m.CallRecord, ReceivedAt: m.ReceivedAt, DurationMS: m.DurationMS, SHA256: m.SHA256, Size: m.Size,
			Folder: folder, Node: m.Node}
	}
	return out, nil
}

func (c cloudVoicemail) VoicemailAudio(ctx context.Context, m protocol.VoicemailMessage) ([]byte, error) {
	return c.n.voicemail.box.Audio(ctx, store.VoicemailMessage{ID: m.ID, SHA256: m.SHA256, Node: m.Node})
}

func (c cloudVoicemail) MarkVoicemailUploaded(_ context.Context, ids []string) error {
	for _, id := range ids {
		if err := c.n.voicemail.box.MarkUploaded(id); err != nil {
			return fmt.Errorf("mark voicemail %s uploaded: %w", id, err)
		}
	}
	return nil
}
