package cluster

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/outpost-voice/outpost/appliance/store"
	"github.com/outpost-voice/outpost/cloudsync/protocol"
)

// CommandType is the first byte of every Raft log entry the FSM applies.
// Types are never renumbered; a new meaning gets a new type.
type CommandType uint8

// The commands of the config plane. A type with IgnorableFlag set may be
// skipped by a node that does not know it (rolling upgrades); an unknown type
// without it stops the FSM loudly.
const (
	CmdApplySnapshot  CommandType = 1 // a whole account revision
	CmdUpsertMember   CommandType = 2 // a node's addresses and site
	CmdRemoveMember   CommandType = 3
	CmdSetMode        CommandType = 4  // normal | survivability | recovering
	CmdPutBindings    CommandType = 6  // registrations a node shares (presence plane)
	CmdPruneBindings  CommandType = 7  // forget bindings that expired before a time
	CmdPutCallRecords CommandType = 8  // finished calls a node shares (outage journal)
	CmdMarkUploaded   CommandType = 9  // call records the cloud has taken
	CmdApplyChanges   CommandType = 10 // the cloud's changes from one revision to a later one
	CmdSetCloudCreds  CommandType = 11 // the appliance's cloud identity, from the node that was paired
	CmdPutELINs       CommandType = 12 // ELINs held for the users who called emergency services (presence plane)
	// CmdPutRotation records who answered a rotating group's last call. It
	// is ignorable (0x8d): a node of an older release skips it and only
	// its rotations lag, instead of halting during a rolling upgrade.
	CmdPutRotation CommandType = 13 | IgnorableFlag
	// CmdSetSDGOverride sets or clears an SDG's emergency override. It is
	// not ignorable: an override is lasting state, and a node that skipped
	// one would route the SDG's calls the old way until a Raft snapshot
	// replaced its store, so an older node halts instead (upgrade
	// followers first).
	CmdSetSDGOverride CommandType = 14
	// CmdPutVoicemail shares voicemail messages and their state changes
	// (presence plane). Not ignorable: a node that skipped one would not
	// know a mailbox's messages until a Raft snapshot replaced its store.
	CmdPutVoicemail CommandType = 15

	IgnorableFlag CommandType = 0x80
)

func (t CommandType) String() string {
	switch t {
	case CmdApplySnapshot:
		return "apply_snapshot"
	case CmdUpsertMember:
		return "upsert_member"
	case CmdRemoveMember:
		return "remove_member"
	case CmdSetMode:
		return "set_mode"
	case CmdBatch:
		return "batch"
	case CmdPutBindings:
		return "put_bindings"
	case CmdPruneBindings:
		return "prune_bindings"
	case CmdPutCallRecords:
		return "put_call_records"
	case CmdMarkUploaded:
		return "mark_uploaded"
	case CmdApplyChanges:
		return "apply_changes"
	case CmdSetCloudCreds:
		return "set_cloud_credentials"
	case CmdPutELINs:
		return "put_elins"
	case CmdPutRotation:
		return "put_rotation"
	case CmdSetSDGOverride:
		return "set_sdg_override"
	case CmdPutVoicemail:
		return "put_voicemail"
	}
	return fmt.Sprintf("command_%d", uint8(t))
}

// commandVersion is the payload encoding version, the second byte of an entry.
// Version 1 payloads are JSON (snapshots are the canonical snapshot document).
const commandVersion = 1

// ErrUnknownCommand is returned for a log entry this binary cannot decode.
var ErrUnknownCommand = errors.New("unknown raft command")

// Modes of the appliance (shared/DESIGN.md, "Modes").
const (
	ModeNormal        = store.ModeNormal
	ModeSurvivability = store.ModeSurvivability
	ModeRecovering    = store.ModeRecovering
)

// ModeChange is the payload of CmdSetMode. Since is stamped by the proposer so
// every node applies the same value.
type ModeChange struct {
	Mode  string    `json:"mode"`
	Since time.Time `json:"since"`
}

// RemoveMember is the payload of CmdRemoveMember.
type RemoveMember struct {
	ID string `json:"id"`
}

// Encode builds a log entry: type, version, payload.
func Encode(t CommandType, payload any) ([]byte, error) {
	var body []byte
	switch p := payload.(type) {
	case []byte:
		body = p
	default:
		var err error
		if body, err = json.Marshal(payload); err != nil {
			return nil, fmt.Errorf("encode %s command: %w", t, err)
		}
	}
	out := make([]byte, 0, len(body)+2)
	out = append(out, byte(t), commandVersion)
	return append(out, body...), nil
}

// EncodeSnapshot is the entry for a whole revision; doc is canonical JSON.
func EncodeSnapshot(doc []byte) []byte {
	b, _ := Encode(CmdApplySnapshot, doc) // []byte payloads never fail
	return b
}

// ApplyChanges is the payload of CmdApplyChanges: the sync protocol's ops
// that take the configuration from revision Base to Revision (one or more
// of the cloud's revisions, whole). It applies only on a node serving
// Base, so it lands on exactly the state its proposer validated.
type ApplyChanges struct {
	Base     int64         `json:"base"`
	Revision int64         `json:"revision"`
	Ops      []protocol.Op `json:"ops"`
}

// EncodeChanges is the entry for the changes from base to rev.
func EncodeChanges(base, rev int64, ops []protocol.Op) ([]byte, error) {
	return Encode(CmdApplyChanges, ApplyChanges{Base: base, Revision: rev, Ops: ops})
}

// EncodeCloudCredentials is the entry sharing the cloud identity a node
// was paired with.
func EncodeCloudCredentials(c store.CloudCredentials) ([]byte, error) {
	return Encode(CmdSetCloudCreds, c)
}

// PutELINs is the payload of CmdPutELINs.
type PutELINs struct {
	Mappings []store.ELINMapping `json:"mappings"`
}

// EncodeELINs is the entry sharing the ELINs a node assigned.
func EncodeELINs(ms []store.ELINMapping) ([]byte, error) {
	return Encode(CmdPutELINs, PutELINs{Mappings: ms})
}

// PutVoicemail is the payload of CmdPutVoicemail.
type PutVoicemail struct {
	Messages []store.VoicemailMessage `json:"messages"`
}

// EncodeVoicemail is the entry sharing voicemail messages a node recorded
// or changed.
func EncodeVoicemail(ms []store.VoicemailMessage) ([]byte, error) {
	return Encode(CmdPutVoicemail, PutVoicemail{Messages: ms})
}

// EncodeRotation is the entry recording that r.Member answered the last
// call of the rotating group r.Group, at r.At (stamped by the proposer).
// Its payload is the JSON of store.Rotation: {"group", "member", "at"}.
func EncodeRotation(r store.Rotation) ([]byte, error) {
	if r.Group == "" || r.Member == "" || r.At.IsZero() {
		return nil, fmt.Errorf("encode %s command: a rotation needs a group, a member and a time (got %q, %q, %v)",
			CmdPutRotation, r.Group, r.Member, r.At)
	}
	r.At = r.At.UTC()
	return Encode(CmdPutRotation, r)
}

// EncodeSDGOverride is the entry setting o (o.Route nil: clearing
// o.SDGID's override). o.At is stamped by the proposer and o.Revision is
// the config revision it checked o against: the FSM refuses the command
// as stale on any other revision.
func EncodeSDGOverride(o store.SDGOverride) ([]byte, error) {
	if o.SDGID == "" || o.By == "" || o.At.IsZero() {
		return nil, fmt.Errorf("encode %s command: an override needs an sdg id, an author and a time (got %q, %q, %v)",
			CmdSetSDGOverride, o.SDGID, o.By, o.At)
	}
	o.At = o.At.UTC()
	return Encode(CmdSetSDGOverride, o)
}

// EncodeMember is the entry announcing a member's addresses.
func EncodeMember(m store.Member) ([]byte, error) { return Encode(CmdUpsertMember, m) }

// PutBindings is the payload of CmdPutBindings.
type PutBindings struct {
	Bindings []store.Binding `json:"bindings"`
}

// PutCallRecords is the payload of CmdPutCallRecords.
type PutCallRecords struct {
	Records []store.CallRecord `json:"records"`
}

// EncodeCallRecords is the entry sharing a node's finished calls.
func EncodeCallRecords(rs []store.CallRecord) ([]byte, error) {
	return Encode(CmdPutCallRecords, PutCallRecords{Records: rs})
}

// MarkUploaded is the payload of CmdMarkUploaded; At is stamped by the
// proposer so every node records the same time.
type MarkUploaded struct {
	IDs []string  `json:"ids"`
	At  time.Time `json:"at"`
}

// EncodeMarkUploaded is the entry recording that the cloud took these call
// records.
func EncodeMarkUploaded(ids []string, at time.Time) ([]byte, error) {
	return Encode(CmdMarkUploaded, MarkUploaded{IDs: ids, At: at})
}

// PruneBindings is the payload of CmdPruneBindings; Before is stamped by the
// proposer so every node prunes alike.
type PruneBindings struct {
	Before time.Time `json:"before"`
}

// EncodeBindings is the entry sharing a node's registrations with the cluster.
func EncodeBindings(bs []store.Binding) ([]byte, error) {
	return Encode(CmdPutBindings, PutBindings{Bindings: bs})
}

// CheckShared checks a command a node proposes through the API: it must be
// a presence-plane command (configuration has endpoints of its own) whose
// payload decodes and whose bindings the store can version, so nothing
// malformed reaches the log.
func CheckShared(cmd []byte) error {
	t, payload, err := splitCommand(cmd)
	if err != nil {
		return err
	}
	dec := json.NewDecoder(bytes.NewReader(payload))
	dec.DisallowUnknownFields()
	switch t {
	case CmdPutBindings:
		var p PutBindings
		if err := dec.Decode(&p); err != nil {
			return fmt.Errorf("%w: %s payload: %v", ErrMalformedCommand, t, err)
		}
		for i, b := range p.Bindings {
			if b.ID == "" || b.AOR == "" || b.UpdatedAt.IsZero() {
				return fmt.Errorf("%w: binding %d needs id, aor and updated_at", ErrMalformedCommand, i)
			}
		}
	case CmdPruneBindings:
		var p PruneBindings
		if err := dec.Decode(&p); err != nil || p.Before.IsZero() {
			return fmt.Errorf("%w: %s payload needs a before time", ErrMalformedCommand, t)
		}
	case CmdPutCallRecords:
		var p PutCallRecords
		if err := dec.Decode(&p); err != nil {
			return fmt.Errorf("%w: %s payload: %v", ErrMalformedCommand, t, err)
		}
		for i, r := range p.Records {
			if r.ID == "" || r.Start.IsZero() || r.End.IsZero() {
				return fmt.Errorf("%w: call record %d needs id, start and end", ErrMalformedCommand, i)
			}
		}
	case CmdPutELINs:
		var p PutELINs
		if err := dec.Decode(&p); err != nil {
			return fmt.Errorf("%w: %s payload: %v", ErrMalformedCommand, t, err)
		}
		for i, m := range p.Mappings {
			if m.ID == "" || m.ELIN == "" || m.UserID == "" || m.UpdatedAt.IsZero() {
				return fmt.Errorf("%w: ELIN mapping %d needs id, elin, user_id and updated_at", ErrMalformedCommand, i)
			}
		}
	case CmdPutVoicemail:
		var p PutVoicemail
		if err := dec.Decode(&p); err != nil {
			return fmt.Errorf("%w: %s payload: %v", ErrMalformedCommand, t, err)
		}
		for i, m := range p.Messages {
			if m.ID == "" || m.Mailbox == "" || m.ReceivedAt.IsZero() || m.UpdatedAt.IsZero() {
				return fmt.Errorf("%w: voicemail message %d needs id, mailbox, received_at and updated_at", ErrMalformedCommand, i)
			}
		}
	case CmdPutRotation:
		var r store.Rotation
		if err := dec.Decode(&r); err != nil {
			return fmt.Errorf("%w: %s payload: %v", ErrMalformedCommand, t, err)
		}
		if r.Group == "" || r.Member == "" || r.At.IsZero() {
			return fmt.Errorf("%w: %s needs group, member and at", ErrMalformedCommand, t)
		}
	case CmdSetCloudCreds:
		var c store.CloudCredentials
		if err := dec.Decode(&c); err != nil {
			return fmt.Errorf("%w: %s payload: %v", ErrMalformedCommand, t, err)
		}
		if err := c.Check(); err != nil {
			return fmt.Errorf("%w: %v", ErrMalformedCommand, err)
		}
	default:
		return fmt.Errorf("%s is not a command nodes may share: only registrations, call records, ELINs, voicemail, rotations and cloud credentials are accepted here", t)
	}
	return nil
}

// EncodeMode is the entry that changes the appliance's mode.
func EncodeMode(mode string, since time.Time) ([]byte, error) {
	switch mode {
	case ModeNormal, ModeSurvivability, ModeRecovering:
	default:
		return nil, fmt.Errorf("mode %q: want normal, survivability or recovering", mode)
	}
	return Encode(CmdSetMode, ModeChange{Mode: mode, Since: since.UTC()})
}

// splitCommand returns an entry's type and payload, checking its version.
func splitCommand(data []byte) (CommandType, []byte, error) {
	if len(data) < 2 {
		return 0, nil, fmt.Errorf("%w: entry of %d bytes is too short", ErrUnknownCommand, len(data))
	}
	t, v := CommandType(data[0]), data[1]
	if v != commandVersion {
		return t, nil, fmt.Errorf("%w: %s version %d (this node knows %d)", ErrUnknownCommand, t, v, commandVersion)
	}
	return t, data[2:], nil
}
