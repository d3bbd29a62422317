package cloudsync

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net/http"
	"time"

	"github.com/outpost-voice/outpost/cloudsync/protocol"
)

// UploadVoicemailAudio sends one message's WAV (PUT
// /v1/sync/voicemail/audio/{sha256}); the cloud checks the hash and keeps
// the audio once, so sending it again is harmless.
func (c *Client) UploadVoicemailAudio(ctx context.Context, sum string, wav []byte) error {
	switch {
	case !protocol.IsSHA256Hex(sum):
		return fmt.Errorf("upload voicemail audio: %q is not a sha256", sum)
	case len(wav) > protocol.MaxVoicemailAudioBytes:
		return fmt.Errorf("upload voicemail audio %s: %d bytes, more than %d", sum, len(wav), protocol.MaxVoicemailAudioBytes)
	}
	if _, err := c.doRaw(ctx, http.MethodPut, protocol.PathVoicemailAudio+sum, wav, "audio/wav", nil, c.o.timeout, maxSmallAnswer); err != nil {
		return fmt.Errorf("upload voicemail audio %s: %w", sum, err)
	}
	return nil
}

// UploadVoicemail sends messages whose audio the cloud holds (POST
// /v1/sync/voicemail) under an idempotency key (VoicemailKey).
func (c *Client) UploadVoicemail(ctx context.Context, key string, ms []protocol.VoicemailMessage) (protocol.VoicemailReceipt, error) {
	switch {
	case key == "":
		return protocol.VoicemailReceipt{}, errors.New("upload voicemail: no idempotency key")
	case len(ms) > protocol.MaxVoicemailBatch:
		return protocol.VoicemailReceipt{}, fmt.Errorf("upload voicemail: %d messages, more than %d a batch", len(ms), protocol.MaxVoicemailBatch)
	}
	var r protocol.VoicemailReceipt
	hdr := http.Header{protocol.HeaderIdempotencyKey: {key}}
	ans, err := c.do(ctx, http.MethodPost, protocol.PathVoicemail, protocol.VoicemailBatch{Messages: ms}, hdr, c.o.timeout, maxSmallAnswer)
	if err == nil {
		err = ans.decode(&r)
	}
	if err != nil {
		return protocol.VoicemailReceipt{}, fmt.Errorf("upload voicemail batch of %d (key %s): %w", len(ms), key, err)
	}
	return r, nil
}

// VoicemailKey is the Idempotency-Key of a voicemail batch: a hash of its
// message ids, whatever their order.
func VoicemailKey(ids []string) string { return idsKey("outpost-voicemail-v1", ids) }

// VoicemailSource is what the VoicemailUploader needs of the appliance's
// mailboxes.
type VoicemailSource interface {
	// PendingVoicemail is up to limit messages the cloud has not taken,
	// oldest first.
	PendingVoicemail(ctx context.Context, limit int) ([]protocol.VoicemailMessage, error)
	// VoicemailAudio is m's WAV, from this node or the node that holds
	// it; an error when no node can give it now.
	VoicemailAudio(ctx context.Context, m protocol.VoicemailMessage) ([]byte, error)
	// MarkVoicemailUploaded records that the cloud holds these messages
	// (then every node frees their audio).
	MarkVoicemailUploaded(ctx context.Context, ids []string) error
}

// VoicemailUploaderConfig configures a VoicemailUploader. Client and
// Source are required.
type VoicemailUploaderConfig struct {
	Client *Client
	Source VoicemailSource
	Log    *slog.Logger // default: discard
	// Batch is the most messages a request carries
	// (protocol.MaxVoicemailBatch, also its ceiling).
	Batch    int
	Interval time.Duration                        // how often Run looks (30 s); Kick looks at once
	Backoff  *Backoff                             // default NewBackoff(nil)
	Now      func() time.Time                     // default time.Now
	After    func(time.Duration) <-chan time.Time // default time.After
}

// VoicemailUploadStatus is what the VoicemailUploader knows: what every
// uploader knows (Uploaded counts messages; Drained: the last look found
// nothing it could upload left), and the messages it could not upload.
type VoicemailUploadStatus struct {
	UploadStatus
	// Unavailable is the messages the last look skipped: no node could
	// give their audio (each with why). They are tried again at the next.
	Unavailable map[string]string
}

// VoicemailUploader sends the mailboxes' messages to the cloud
// (docs/sync-protocol.md, "Voicemail upload"): each message's audio
// first, then the messages in batches under an Idempotency-Key made from
// their ids; a message is marked uploaded only once the cloud has
// answered that it holds it, and only then is its audio freed.
type VoicemailUploader struct {
	*loop
	cfg  VoicemailUploaderConfig
	book uploadBook

	unavailable map[string]string // guarded by book.mu
}

// NewVoicemailUploader checks cfg and fills its defaults.
func NewVoicemailUploader(cfg VoicemailUploaderConfig) (*VoicemailUploader, error) {
	if cfg.Client == nil || cfg.Source == nil {
		return nil, errors.New("new voicemail uploader: a client and a source are required")
	}
	if cfg.Batch <= 0 || cfg.Batch > protocol.MaxVoicemailBatch {
		cfg.Batch = protocol.MaxVoicemailBatch
	}
	l := newLoop(loopConfig{Log: cfg.Log, Interval: cfg.Interval, Backoff: cfg.Backoff, Now: cfg.Now, After: cfg.After},
		30*time.Second, "component", "cloudsync", "loop", "voicemail")
	return &VoicemailUploader{loop: l, cfg: cfg, book: uploadBook{now: l.now}}, nil
}

// Status is a copy of what the uploader knows.
func (u *VoicemailUploader) Status() VoicemailUploadStatus {
	u.book.mu.Lock()
	defer u.book.mu.Unlock()
	return VoicemailUploadStatus{UploadStatus: u.book.st, Unavailable: maps.Clone(u.unavailable)}
}

// Run uploads what is pending now, then every Interval or Kick, until ctx
// ends, retrying failures with the journal's backoff rules.
func (u *VoicemailUploader) Run(ctx context.Context) {
	run(ctx, u.loop, "voicemail upload failed; retrying", u.UploadPending, nil)
}

// UploadPending uploads batches until nothing it can upload is pending,
// and says how many messages the cloud took. It stops at the first
// failure of the cloud or the source; what was marked stays marked. A
// message whose audio no node can give is skipped (logged, listed in the
// status) and the rest goes on.
func (u *VoicemailUploader) UploadPending(ctx context.Context) (int, error) {
	total := 0
	skipped := map[string]string{}
	for {
		ms, err := u.cfg.Source.PendingVoicemail(ctx, u.cfg.Batch+len(skipped))
		if err != nil {
			return total, u.book.failed(fmt.Errorf("read pending voicemail: %w", err))
		}
		var ready []protocol.VoicemailMessage
		looked := 0
		for _, m := range ms {
			if _, skip := skipped[m.ID]; skip || looked == u.cfg.Batch {
				continue
			}
			looked++
			data, err := u.cfg.Source.VoicemailAudio(ctx, m)
			if err != nil {
				if ctx.Err() != nil {
					return total, ctx.Err()
				}
				skipped[m.ID] = err.Error()
				u.log.Warn("voicemail audio on no node now: message skipped", "id", m.ID, "mailbox", m.Mailbox, "sha256", m.SHA256, "error", err)
				continue
			}
			if err := u.cfg.Client.UploadVoicemailAudio(ctx, m.SHA256, data); err != nil {
				return total, u.book.failed(err)
			}
			ready = append(ready, m)
		}
		if looked == 0 {
			u.book.mu.Lock()
			u.book.st.Drained, u.book.st.LastError, u.unavailable = len(skipped) == 0, "", skipped
			u.book.mu.Unlock()
			return total, nil
		}
		if len(ready) == 0 {
			continue
		}
		ids := make([]string, len(ready))
		for i, m := range ready {
			ids[i] = m.ID
		}
		key := VoicemailKey(ids)
		r, err := u.cfg.Client.UploadVoicemail(ctx, key, ready)
		if err != nil {
			return total, u.book.failed(err)
		}
		if len(r.Taken) > 0 {
			if err := u.cfg.Source.MarkVoicemailUploaded(ctx, r.Taken); err != nil {
				return total, u.book.failed(fmt.Errorf("mark %d voicemail messages uploaded: %w", len(r.Taken), err))
			}
		}
		total += len(r.Taken)
		u.log.Info("voicemail batch uploaded", "messages", len(ready), "accepted", r.Accepted, "duplicates", r.Duplicates,
			"idempotency_key", key)
		u.book.took(len(r.Taken), false)
		if len(r.MissingAudio) > 0 {
			return total, u.book.failed(fmt.Errorf("upload voicemail: the cloud holds no audio for %d messages just sent (first %s)",
				len(r.MissingAudio), r.MissingAudio[0]))
		}
		if len(r.Taken) != len(ready) {
			// Never loop on a batch the cloud does not take.
			return total, u.book.failed(fmt.Errorf("upload voicemail: the cloud took %d of %d messages", len(r.Taken), len(ready)))
		}
	}
}
