package cloud

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/outpost-voice/outpost/cloudsync/protocol"
)

// PairingCodeTTL is how long a pairing code works.
const PairingCodeTTL = 24 * time.Hour

// Appliance is what the cloud knows of a paired appliance, as
// GET /v1/admin/appliances shows it.
type Appliance struct {
	Name     string    `json:"name"`
	PairedAt time.Time `json:"paired_at"`
	// From the last hello.
	NodeID        string     `json:"node_id,omitempty"`
	PushURL       string     `json:"push_url,omitempty"`
	Version       string     `json:"version,omitempty"`
	LastHelloAt   *time.Time `json:"last_hello_at,omitempty"`
	HelloRevision *int64     `json:"hello_revision,omitempty"`
	// HelloOverrides is how many SDG overrides the last hello said were
	// in force (GET /v1/admin/overrides lists the latest report).
	HelloOverrides *int      `json:"hello_overrides,omitempty"`
	LastAck        *AckState `json:"last_ack,omitempty"`
}

// AckState is an appliance's last acknowledgement.
type AckState struct {
	Revision int64              `json:"revision"`
	Status   string             `json:"status"`
	Problems []protocol.Problem `json:"problems,omitempty"`
	NodeID   string             `json:"node_id,omitempty"`
	At       time.Time          `json:"at"`
}

// pushTarget is an appliance the cloud pushes to.
type pushTarget struct {
	name, url, key string
}

func fromMS(ms int64) time.Time { return time.UnixMilli(ms).UTC() }

// AddPairingCode records a one-use code for appliance, valid until
// expires. Only the code's hash is stored.
func (s *Store) AddPairingCode(ctx context.Context, appliance, code string, now, expires time.Time) error {
	if _, err := s.wdb.ExecContext(ctx,
		`INSERT INTO pairing_codes (code_hash, appliance, created_ms, expires_ms) VALUES (?, ?, ?, ?)`,
		hashSecret(normalizeCode(code)), appliance, now.UnixMilli(), expires.UnixMilli()); err != nil {
		return fmt.Errorf("add pairing code for %s: %w", appliance, err)
	}
	return nil
}

// Pair redeems code at now: marks it used and registers its appliance with
// the hash of secret and with pushKey, replacing the credentials of an
// appliance paired before (and forgetting its push URL until its next
// hello). It returns the appliance's name. An unknown, used or expired
// code is ErrPairingRefused, and nothing changes.
func (s *Store) Pair(ctx context.Context, code, secret, pushKey string, now time.Time) (string, error) {
	tx, err := s.wdb.BeginTx(ctx, nil)
	if err != nil {
		return "", fmt.Errorf("pair: begin: %w", err)
	}
	defer tx.Rollback()
	h := hashSecret(normalizeCode(code))
	var name string
	var expires int64
	var used sql.NullInt64
	err = tx.QueryRowContext(ctx, `SELECT appliance, expires_ms, used_ms FROM pairing_codes WHERE code_hash = ?`, h).
		Scan(&name, &expires, &used)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return "", fmt.Errorf("%w: no such code", ErrPairingRefused)
	case err != nil:
		return "", fmt.Errorf("pair: read code: %w", err)
	case used.Valid:
		return "", fmt.Errorf("%w: code already used at %s", ErrPairingRefused, fromMS(used.Int64).Format(time.RFC3339))
	case now.UnixMilli() >= expires:
		return "", fmt.Errorf("%w: code expired at %s", ErrPairingRefused, fromMS(expires).Format(time.RFC3339))
	}
	at := now.UnixMilli()
	if _, err := tx.ExecContext(ctx, `UPDATE pairing_codes SET used_ms = ? WHERE code_hash = ?`, at, h); err != nil {
		return "", fmt.Errorf("pair: use code: %w", err)
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO appliances (name, secret_hash, push_key, paired_ms) VALUES (?, ?, ?, ?)
		ON CONFLICT (name) DO UPDATE SET secret_hash = excluded.secret_hash, push_key = excluded.push_key,
			paired_ms = excluded.paired_ms, push_url = ''`,
		name, hashSecret(secret), pushKey, at); err != nil {
		return "", fmt.Errorf("pair: register %s: %w", name, err)
	}
	if err := tx.Commit(); err != nil {
		return "", fmt.Errorf("pair: commit: %w", err)
	}
	return name, nil
}

// dummyHash is compared against when the appliance is unknown, so an
// unknown name and a wrong secret take the same time.
var dummyHash = hashSecret("no such appliance")

// Authenticate checks an appliance's name and bearer secret; a mismatch is
// ErrUnauthorized.
func (s *Store) Authenticate(ctx context.Context, name, secret string) error {
	var stored string
	err := s.rdb.QueryRowContext(ctx, `SELECT secret_hash FROM appliances WHERE name = ?`, name).Scan(&stored)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		sameHash(dummyHash, hashSecret(secret))
		return ErrUnauthorized
	case err != nil:
		return fmt.Errorf("authenticate %s: %w", name, err)
	}
	if !sameHash(stored, hashSecret(secret)) {
		return ErrUnauthorized
	}
	return nil
}

// Hello records an appliance's probe: its node, version, revision, push
// URL and how many SDG overrides are in force (NULL when it does not say).
func (s *Store) Hello(ctx context.Context, name string, h protocol.Hello, now time.Time) error {
	var overrides sql.NullInt64
	if h.Overrides != nil {
		overrides = sql.NullInt64{Int64: int64(*h.Overrides), Valid: true}
	}
	res, err := s.wdb.ExecContext(ctx, `UPDATE appliances SET node_id = ?, version = ?, push_url = ?,
		hello_revision = ?, hello_ms = ?, hello_overrides = ? WHERE name = ?`,
		h.NodeID, h.Version, h.PushURL, h.Revision, now.UnixMilli(), overrides, name)
	if err != nil {
		return fmt.Errorf("record hello of %s: %w", name, err)
	}
	return mustAffect(res, name)
}

// Ack records an appliance's last acknowledgement.
func (s *Store) Ack(ctx context.Context, name string, a protocol.Ack, now time.Time) error {
	problems := a.Problems
	if problems == nil {
		problems = []protocol.Problem{}
	}
	pj, err := json.Marshal(problems)
	if err != nil {
		return fmt.Errorf("record ack of %s: %w", name, err)
	}
	res, err := s.wdb.ExecContext(ctx, `UPDATE appliances SET ack_revision = ?, ack_status = ?, ack_problems = ?,
		ack_node_id = ?, ack_ms = ? WHERE name = ?`,
		a.Revision, a.Status, string(pj), a.NodeID, now.UnixMilli(), name)
	if err != nil {
		return fmt.Errorf("record ack of %s: %w", name, err)
	}
	return mustAffect(res, name)
}

func mustAffect(res sql.Result, name string) error {
	n, err := res.RowsAffected()
	if err != nil {
		return fmt.Errorf("appliance %s: %w", name, err)
	}
	if n == 0 {
		return fmt.Errorf("appliance %s: %w", name, ErrNotFound)
	}
	return nil
}

// Appliances lists the paired appliances by name.
func (s *Store) Appliances(ctx context.Context) ([]Appliance, error) {
	rows, err := s.rdb.QueryContext(ctx, `SELECT name, paired_ms, node_id, push_url, version, hello_revision, hello_ms,
		hello_overrides, ack_revision, ack_status, ack_problems, ack_node_id, ack_ms FROM appliances ORDER BY name`)
	if err != nil {
		return nil, fmt.Errorf("list appliances: %w", err)
	}
	defer rows.Close()
	out := []Appliance{}
	for rows.Next() {
		var a Appliance
		var paired int64
		var helloRev, helloMS, helloOverrides, ackRev, ackMS sql.NullInt64
		var ackStatus, ackProblems, ackNode string
		if err := rows.Scan(&a.Name, &paired, &a.NodeID, &a.PushURL, &a.Version, &helloRev, &helloMS,
			&helloOverrides, &ackRev, &ackStatus, &ackProblems, &ackNode, &ackMS); err != nil {
			return nil, fmt.Errorf("list appliances: %w", err)
		}
		a.PairedAt = fromMS(paired)
		if helloMS.Valid {
			t := fromMS(helloMS.Int64)
			a.LastHelloAt, a.HelloRevision = &t, &helloRev.Int64
		}
		if helloOverrides.Valid {
			n := int(helloOverrides.Int64)
			a.HelloOverrides = &n
		}
		if ackMS.Valid {
			a.LastAck = &AckState{Revision: ackRev.Int64, Status: ackStatus, NodeID: ackNode, At: fromMS(ackMS.Int64)}
			if err := json.Unmarshal([]byte(ackProblems), &a.LastAck.Problems); err != nil {
				return nil, fmt.Errorf("appliance %s: stored ack problems: %w", a.Name, err)
			}
		}
		out = append(out, a)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list appliances: %w", err)
	}
	return out, nil
}

// applianceExists reports whether name is paired.
func (s *Store) applianceExists(ctx context.Context, name string) (bool, error) {
	var n int
	if err := s.rdb.QueryRowContext(ctx, `SELECT count(*) FROM appliances WHERE name = ?`, name).Scan(&n); err != nil {
		return false, fmt.Errorf("look up appliance %s: %w", name, err)
	}
	return n > 0, nil
}

// pushTargets lists the appliances that told the cloud where to push.
func (s *Store) pushTargets(ctx context.Context) ([]pushTarget, error) {
	rows, err := s.rdb.QueryContext(ctx, `SELECT name, push_url, push_key FROM appliances WHERE push_url != '' ORDER BY name`)
	if err != nil {
		return nil, fmt.Errorf("list push targets: %w", err)
	}
	defer rows.Close()
	var out []pushTarget
	for rows.Next() {
		var t pushTarget
		if err := rows.Scan(&t.name, &t.url, &t.key); err != nil {
			return nil, fmt.Errorf("list push targets: %w", err)
		}
		out = append(out, t)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list push targets: %w", err)
	}
	return out, nil
}
