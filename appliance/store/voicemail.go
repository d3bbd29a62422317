package store

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// Voicemail (0011_voicemail.sql): the mailboxes' messages on the presence
// plane. The node that records a message writes it with PutLocalVoicemail;
// any node changes a message's state with MarkVoicemail (into its own
// local table); both are shared like call records (Tx.PutVoicemail on
// every node). The state only moves forward (new -> saved, deleted,
// uploaded) and merges by maximum, so every order of the same changes ends
// in the same message.
//
// The API message waiting and the cloud upload build on:
//
//	Reader.Mailbox(ctx, mailbox)          the mailbox's messages, new then saved
//	Reader.MailboxCounts(ctx, mailbox)    how many new and saved
//	Reader.VoicemailByID(ctx, id)         one message (ErrNoVoicemail)
//	Reader.PendingVoicemailUploads(ctx, n) not uploaded and not deleted, oldest first
//	Store.MarkVoicemail(id, change, now)  VoicemailSaved, VoicemailDeleted, VoicemailUploaded
//
// The audio files and change notifications are appliance/voicemail's.

// ErrInvalidVoicemail marks a message the store will not keep.
var ErrInvalidVoicemail = errors.New("invalid voicemail message")

// ErrNoVoicemail: no message has that id.
var ErrNoVoicemail = errors.New("no such voicemail message")

// Folders of a message.
const (
	FolderNew   = "new"
	FolderSaved = "saved"
)

// VoicemailMessage is one message left in a mailbox. Times are stored
// with millisecond precision and read back in UTC.
type VoicemailMessage struct {
	ID         string    `json:"id"`                    // a UUID made by the recording node
	Mailbox    string    `json:"mailbox"`               // a user's or an SDG's id
	Caller     string    `json:"caller"`                // the caller's number or username
	CallerName string    `json:"caller_name,omitempty"` // as presented
	CallRecord string    `json:"call_record"`           // the id of the call's record
	ReceivedAt time.Time `json:"received_at"`
	DurationMS int64     `json:"duration_ms"`
	SHA256     string    `json:"sha256"` // of the WAV file, lower-case hex
	Size       int64     `json:"size"`   // of the WAV file, bytes
	Node       string    `json:"node"`   // the node that recorded it (and holds the audio)
	Folder     string    `json:"folder"` // FolderNew or FolderSaved
	Deleted    bool      `json:"deleted"`
	UploadedAt time.Time `json:"uploaded_at,omitzero"` // zero until the cloud took it
	// UpdatedAt is when the message last changed on the node that wrote
	// this copy: the version the sharer catches up by.
	UpdatedAt time.Time `json:"updated_at"`
}

// A VoicemailChange is a state change MarkVoicemail applies.
type VoicemailChange int

// State changes of a message; each is idempotent.
const (
	VoicemailSaved    VoicemailChange = iota + 1 // heard: new -> saved
	VoicemailDeleted                             // deleted by its owner
	VoicemailUploaded                            // the cloud took it (at now)
)

const voicemailColumns = `id, mailbox, caller, caller_name, call_record, received_ms, duration_ms,
	sha256, size, node, saved, deleted, uploaded_ms, updated_ms`

// upsertVoicemailSQL writes a message into a table (%s): the first write
// of what it says wins, the state merges by maximum.
const upsertVoicemailSQL = `INSERT INTO %s (` + voicemailColumns + `)
	VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
	ON CONFLICT (id) DO UPDATE SET saved = max(saved, excluded.saved), deleted = max(deleted, excluded.deleted),
		uploaded_ms = max(uploaded_ms, excluded.uploaded_ms), updated_ms = max(updated_ms, excluded.updated_ms)`

// mergedVoicemailSQL is both tables merged per id, filtered by where
// (on the inner rows, with ?1 as its argument).
func mergedVoicemailSQL(where string) string {
	return `SELECT id, mailbox, caller, caller_name, call_record, received_ms, duration_ms, sha256, size, node,
		max(saved) AS saved, max(deleted) AS deleted, max(uploaded_ms) AS uploaded_ms, max(updated_ms) AS updated_ms FROM (
		SELECT ` + voicemailColumns + ` FROM local_voicemail WHERE ` + where + `
		UNION ALL
		SELECT ` + voicemailColumns + ` FROM voicemail WHERE ` + where + `)
	GROUP BY id`
}

var (
	// The filters inside are on what never changes (mailbox, id); the
	// state is filtered on the merged rows.
	mailboxSQL = `SELECT * FROM (` + mergedVoicemailSQL("mailbox = ?1") + `)
		WHERE deleted = 0 ORDER BY saved, received_ms, id`
	voicemailByIDSQL = mergedVoicemailSQL("id = ?1")
	pendingVMSQL     = `SELECT * FROM (` + mergedVoicemailSQL("1") + `)
		WHERE uploaded_ms = 0 ORDER BY received_ms, id LIMIT ?1`
)

func checkVoicemail(ms []VoicemailMessage) error {
	for i, m := range ms {
		var what string
		switch {
		case m.ID == "":
			what = "empty id"
		case m.Mailbox == "":
			what = "empty mailbox"
		case m.ReceivedAt.IsZero() || m.UpdatedAt.IsZero():
			what = "zero received_at or updated_at"
		case len(m.SHA256) != 64:
			what = "sha256 is not 64 hex digits"
		case m.Folder != FolderNew && m.Folder != FolderSaved:
			what = fmt.Sprintf("folder %q is not new or saved", m.Folder)
		default:
			continue
		}
		return fmt.Errorf("%w: message %d (id %q): %s", ErrInvalidVoicemail, i, m.ID, what)
	}
	return nil
}

func (tx *Tx) putVoicemail(table string, ms []VoicemailMessage) error {
	if err := checkVoicemail(ms); err != nil {
		return err
	}
	q := fmt.Sprintf(upsertVoicemailSQL, table)
	for _, m := range ms {
		var uploaded int64
		if !m.UploadedAt.IsZero() {
			uploaded = m.UploadedAt.UnixMilli()
		}
		_, err := tx.tx.ExecContext(tx.ctx, q, m.ID, m.Mailbox, m.Caller, m.CallerName, m.CallRecord,
			m.ReceivedAt.UnixMilli(), m.DurationMS, m.SHA256, m.Size, m.Node,
			boolInt(m.Folder == FolderSaved), boolInt(m.Deleted), uploaded, m.UpdatedAt.UnixMilli())
		if err != nil {
			return fmt.Errorf("put voicemail %s: %w", m.ID, err)
		}
	}
	return nil
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// PutLocalVoicemail records messages this node recorded, at once and
// whatever the cluster's state. Writing a message again merges (see the
// package comment): harmless. Only this node's voicemail calls it. A
// batch holding an invalid message (ErrInvalidVoicemail) writes nothing.
func (s *Store) PutLocalVoicemail(ms []VoicemailMessage) error {
	if len(ms) == 0 {
		return nil
	}
	return s.write("put local voicemail", func(tx *Tx) error { return tx.putVoicemail("local_voicemail", ms) })
}

// PutVoicemail records messages shared through Raft, with the rules of
// PutLocalVoicemail. Only the FSM calls it.
func (tx *Tx) PutVoicemail(ms []VoicemailMessage) error {
	if len(ms) == 0 {
		return nil
	}
	return tx.putVoicemail("voicemail", ms)
}

// MarkVoicemail applies change to message id as this node knows it (its
// own copy merged with the cluster's), stamped now, into this node's local
// table, and returns the message after the change; the sharer then shares
// it. Marking twice is harmless. ErrNoVoicemail when there is no such
// message.
func (s *Store) MarkVoicemail(id string, change VoicemailChange, now time.Time) (VoicemailMessage, error) {
	var out VoicemailMessage
	err := s.write("mark voicemail", func(tx *Tx) error {
		ms, err := queryVoicemail(tx.ctx, tx.tx, voicemailByIDSQL, id)
		if err != nil {
			return fmt.Errorf("read voicemail %s: %w", id, err)
		}
		if len(ms) == 0 {
			return fmt.Errorf("mark voicemail %s: %w", id, ErrNoVoicemail)
		}
		m := ms[0]
		switch change {
		case VoicemailSaved:
			m.Folder = FolderSaved
		case VoicemailDeleted:
			m.Deleted = true
		case VoicemailUploaded:
			if m.UploadedAt.IsZero() {
				m.UploadedAt = now.UTC()
			}
		default:
			return fmt.Errorf("%w: unknown change %d", ErrInvalidVoicemail, change)
		}
		if now.After(m.UpdatedAt) {
			m.UpdatedAt = now.UTC()
		} else { // a later version than any seen, whatever this node's clock says
			m.UpdatedAt = m.UpdatedAt.Add(time.Millisecond)
		}
		out = m
		return tx.putVoicemail("local_voicemail", []VoicemailMessage{m})
	})
	return out, err
}

// Mailbox is mailbox's messages that are not deleted: new ones first,
// then saved ones, each oldest first.
func (r *Reader) Mailbox(ctx context.Context, mailbox string) ([]VoicemailMessage, error) {
	ms, err := queryVoicemail(ctx, r.db, mailboxSQL, mailbox)
	if err != nil {
		return nil, fmt.Errorf("read mailbox %s: %w", mailbox, err)
	}
	return ms, nil
}

// MailboxCounts is how many new and saved messages mailbox holds.
func (r *Reader) MailboxCounts(ctx context.Context, mailbox string) (newCount, saved int, err error) {
	ms, err := r.Mailbox(ctx, mailbox)
	if err != nil {
		return 0, 0, err
	}
	for _, m := range ms {
		if m.Folder == FolderNew {
			newCount++
		} else {
			saved++
		}
	}
	return newCount, saved, nil
}

// VoicemailByID is message id, deleted or not; ErrNoVoicemail when none.
func (r *Reader) VoicemailByID(ctx context.Context, id string) (VoicemailMessage, error) {
	ms, err := queryVoicemail(ctx, r.db, voicemailByIDSQL, id)
	if err != nil {
		return VoicemailMessage{}, fmt.Errorf("read voicemail %s: %w", id, err)
	}
	if len(ms) == 0 {
		return VoicemailMessage{}, fmt.Errorf("voicemail %s: %w", id, ErrNoVoicemail)
	}
	return ms[0], nil
}

// PendingVoicemailUploads is the messages the cloud has not taken, those
// their owners deleted included (the cloud keeps the outage's record; the
// audio is freed once it has it), oldest first, at most limit (1000 when
// limit <= 0).
func (r *Reader) PendingVoicemailUploads(ctx context.Context, limit int) ([]VoicemailMessage, error) {
	if limit <= 0 {
		limit = defaultCallRecordsLimit
	}
	ms, err := queryVoicemail(ctx, r.db, pendingVMSQL, limit)
	if err != nil {
		return nil, fmt.Errorf("read pending voicemail: %w", err)
	}
	return ms, nil
}

// CountPendingVoicemailUploads is how many messages the cloud has not
// taken (PendingVoicemailUploads without the limit).
func (r *Reader) CountPendingVoicemailUploads(ctx context.Context) (int, error) {
	var n int
	if err := r.db.QueryRowContext(ctx, `SELECT count(*) FROM (`+mergedVoicemailSQL("1")+`) WHERE uploaded_ms = 0`).Scan(&n); err != nil {
		return 0, fmt.Errorf("count pending voicemail: %w", err)
	}
	return n, nil
}

// VoicemailAudioUploaded reports whether the cloud has taken every message
// whose audio is hash (messages with the same audio share its file): only
// then may a node delete the file.
func (r *Reader) VoicemailAudioUploaded(ctx context.Context, hash string) (bool, error) {
	var pending int
	if err := r.db.QueryRowContext(ctx, `SELECT count(*) FROM (`+mergedVoicemailSQL("sha256 = ?1")+`) WHERE uploaded_ms = 0`,
		hash).Scan(&pending); err != nil {
		return false, fmt.Errorf("read voicemail audio %s: %w", hash, err)
	}
	return pending == 0, nil
}

// UploadedVoicemailAudio is the audio hashes every message of which the
// cloud has taken: a node may delete their files.
func (r *Reader) UploadedVoicemailAudio(ctx context.Context) (map[string]bool, error) {
	rows, err := r.db.QueryContext(ctx, `SELECT sha256 FROM (`+mergedVoicemailSQL("1")+`)
		GROUP BY sha256 HAVING min(uploaded_ms) > 0`)
	if err != nil {
		return nil, fmt.Errorf("read uploaded voicemail audio: %w", err)
	}
	defer rows.Close()
	out := map[string]bool{}
	for rows.Next() {
		var h string
		if err := rows.Scan(&h); err != nil {
			return nil, fmt.Errorf("read uploaded voicemail audio: %w", err)
		}
		out[h] = true
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read uploaded voicemail audio: %w", err)
	}
	return out, nil
}

// LocalVoicemailSince is this node's copies changed after since, oldest
// change first: what to share to catch up.
func (r *Reader) LocalVoicemailSince(ctx context.Context, since time.Time) ([]VoicemailMessage, error) {
	ms, err := queryVoicemail(ctx, r.db, `SELECT `+voicemailColumns+` FROM local_voicemail WHERE updated_ms > ? ORDER BY updated_ms, id`,
		since.UnixMilli())
	if err != nil {
		return nil, fmt.Errorf("read local voicemail: %w", err)
	}
	return ms, nil
}

func queryVoicemail(ctx context.Context, q querier, query string, args ...any) ([]VoicemailMessage, error) {
	rows, err := q.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []VoicemailMessage
	for rows.Next() {
		var m VoicemailMessage
		var received, uploaded, updated int64
		var saved, deleted int
		if err := rows.Scan(&m.ID, &m.Mailbox, &m.Caller, &m.CallerName, &m.CallRecord, &received, &m.DurationMS,
			&m.SHA256, &m.Size, &m.Node, &saved, &deleted, &uploaded, &updated); err != nil {
			return nil, err
		}
		m.ReceivedAt, m.UpdatedAt = time.UnixMilli(received).UTC(), time.UnixMilli(updated).UTC()
		if uploaded != 0 {
			m.UploadedAt = time.UnixMilli(uploaded).UTC()
		}
		m.Folder = FolderNew
		if saved != 0 {
			m.Folder = FolderSaved
		}
		m.Deleted = deleted != 0
		out = append(out, m)
	}
	return out, rows.Err()
}
