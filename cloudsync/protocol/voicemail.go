package protocol

import (
	"fmt"
	"time"
)

// Voicemail upload (docs/sync-protocol.md, "Voicemail upload"): the
// audio first, content-addressed, then the messages that name it.
const (
	// PathVoicemailAudio + the WAV's sha256 (64 lower-case hex digits):
	// PUT the WAV -> VoicemailAudioReceipt (201 stored, 200 already held).
	// The cloud checks the hash; at most MaxVoicemailAudioBytes.
	PathVoicemailAudio = "/v1/sync/voicemail/audio/"
	// PathVoicemail: POST VoicemailBatch with Idempotency-Key ->
	// VoicemailReceipt.
	PathVoicemail = "/v1/sync/voicemail"
)

// Voicemail limits both sides agree on.
const (
	// MaxVoicemailBatch is the most messages one batch may carry.
	MaxVoicemailBatch = 100
	// MaxVoicemailAudioBytes bounds one message's WAV (a 3-minute
	// message is 2.9 MB at 8 kHz 16-bit mono).
	MaxVoicemailAudioBytes = 5 << 20
)

// VoicemailMessage is one message as the cloud keeps it: what the
// appliance's mailbox knows of it, its audio named by sha256.
type VoicemailMessage struct {
	ID         string    `json:"id"`      // stable: made by the recording node
	Mailbox    string    `json:"mailbox"` // a user's or an SDG's id
	Caller     string    `json:"caller"`
	CallerName string    `json:"caller_name,omitempty"`
	CallRecord string    `json:"call_record,omitempty"` // the id of the call's record (the journal)
	ReceivedAt time.Time `json:"received_at"`
	DurationMS int64     `json:"duration_ms"`
	SHA256     string    `json:"sha256"` // of the WAV, uploaded first
	Size       int64     `json:"size"`
	Folder     string    `json:"folder"` // "new", "saved" or "deleted" (by its owner) when uploaded
	Node       string    `json:"node,omitempty"`
}

// Check says what is wrong with m, or nil.
func (m VoicemailMessage) Check() error {
	switch {
	case m.ID == "" || len(m.ID) > 128:
		return fmt.Errorf("id: want 1 to 128 characters")
	case m.Mailbox == "":
		return fmt.Errorf("mailbox: missing")
	case !IsSHA256Hex(m.SHA256):
		return fmt.Errorf("sha256: %q is not 64 lower-case hex digits", m.SHA256)
	case m.ReceivedAt.IsZero():
		return fmt.Errorf("received_at: missing")
	case m.Folder != "new" && m.Folder != "saved" && m.Folder != FolderDeleted:
		return fmt.Errorf("folder: %q, want new, saved or deleted", m.Folder)
	case m.DurationMS < 0 || m.Size < 0:
		return fmt.Errorf("duration_ms and size must not be negative")
	}
	return nil
}

// FolderDeleted is the folder of a message its owner deleted before the
// upload: the cloud keeps it as the outage's record.
const FolderDeleted = "deleted"

// IsSHA256Hex reports whether s is 64 lower-case hex digits.
func IsSHA256Hex(s string) bool {
	if len(s) != 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

// VoicemailBatch uploads messages whose audio the cloud holds.
type VoicemailBatch struct {
	Messages []VoicemailMessage `json:"messages"`
}

// VoicemailReceipt says what the cloud did with a batch: Taken lists the
// ids it holds now (stored by this batch or before: each message is kept
// once by id), MissingAudio the ids it did not take because their audio
// was not uploaded. A retried batch (same Idempotency-Key) gets the first
// answer again.
type VoicemailReceipt struct {
	Accepted     int      `json:"accepted"`
	Duplicates   int      `json:"duplicates"`
	Taken        []string `json:"taken"`
	MissingAudio []string `json:"missing_audio,omitempty"`
}

// VoicemailAudioReceipt answers an audio upload.
type VoicemailAudioReceipt struct {
	SHA256 string `json:"sha256"`
	Size   int    `json:"size"`
}
