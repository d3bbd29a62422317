package store

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
)

// ErrInvalidELIN marks an ELIN mapping the store will not keep: no id,
// ELIN or user, or no update time.
var ErrInvalidELIN = errors.New("invalid ELIN mapping")

// ELINMapping is one ELIN held for the user whose emergency call went out
// with it (sbc.ELINMapping, the same JSON): presence-plane, newest
// UpdatedAt wins.
type ELINMapping struct {
	ID        string    `json:"id"`
	ELIN      string    `json:"elin"`
	Site      string    `json:"site"`
	UserID    string    `json:"user_id"`
	CalledAt  time.Time `json:"called_at"`
	ExpiresAt time.Time `json:"expires_at"`
	UpdatedAt time.Time `json:"updated_at"`
}

const elinColumns = `id, elin, site, user_id, called_ms, expires_ms, updated_ms`

// upsertELINSQL writes a mapping into a table (%s) unless the row held is
// as new or newer.
const upsertELINSQL = `INSERT INTO %s (` + elinColumns + `) VALUES (?, ?, ?, ?, ?, ?, ?)
	ON CONFLICT (id) DO UPDATE SET elin = excluded.elin, site = excluded.site, user_id = excluded.user_id,
		called_ms = excluded.called_ms, expires_ms = excluded.expires_ms, updated_ms = excluded.updated_ms
	WHERE excluded.updated_ms > updated_ms`

func checkELINs(ms []ELINMapping) error {
	for i, m := range ms {
		if m.ID == "" || m.ELIN == "" || m.UserID == "" || m.UpdatedAt.IsZero() {
			return fmt.Errorf("%w: mapping %d (id %q) needs id, elin, user_id and updated_at", ErrInvalidELIN, i, m.ID)
		}
	}
	return nil
}

func (tx *Tx) putELINs(table string, ms []ELINMapping) error {
	if err := checkELINs(ms); err != nil {
		return err
	}
	q := fmt.Sprintf(upsertELINSQL, table)
	for _, m := range ms {
		_, err := tx.tx.ExecContext(tx.ctx, q, m.ID, m.ELIN, m.Site, m.UserID,
			m.CalledAt.UnixMilli(), m.ExpiresAt.UnixMilli(), m.UpdatedAt.UnixMilli())
		if err != nil {
			return fmt.Errorf("put ELIN mapping %s: %w", m.ID, err)
		}
	}
	return nil
}

// PutLocalELINMappings records mappings this node made, at once and
// whatever the cluster's state (the newest per id is kept). Only this
// node's call handling calls it. An invalid mapping writes nothing.
func (s *Store) PutLocalELINMappings(ms []ELINMapping) error {
	if len(ms) == 0 {
		return nil
	}
	return s.write("put local ELIN mappings", func(tx *Tx) error { return tx.putELINs("local_elin_mappings", ms) })
}

// PutELINMappings records mappings shared through Raft, with the rules of
// PutLocalELINMappings. Only the FSM calls it.
func (tx *Tx) PutELINMappings(ms []ELINMapping) error { return tx.putELINs("elin_mappings", ms) }

// ELINMappings is the newest mapping held for each of elins, from this
// node's own and the shared ones (an ELIN never mapped is absent).
func (r *Reader) ELINMappings(ctx context.Context, elins []string) ([]ELINMapping, error) {
	if len(elins) == 0 {
		return nil, nil
	}
	marks := strings.TrimSuffix(strings.Repeat("?, ", len(elins)), ", ")
	args := make([]any, 0, 2*len(elins))
	for range 2 { // once per table
		for _, e := range elins {
			args = append(args, e)
		}
	}
	q := `SELECT ` + elinColumns + ` FROM (
		SELECT ` + elinColumns + ` FROM local_elin_mappings WHERE elin IN (` + marks + `)
		UNION ALL
		SELECT ` + elinColumns + ` FROM elin_mappings WHERE elin IN (` + marks + `))
		ORDER BY id, updated_ms DESC`
	ms, err := queryELINs(ctx, r, q, args...)
	if err != nil {
		return nil, fmt.Errorf("read ELIN mappings: %w", err)
	}
	out := ms[:0]
	for _, m := range ms {
		if len(out) == 0 || out[len(out)-1].ID != m.ID {
			out = append(out, m) // the newest of each id comes first
		}
	}
	return out, nil
}

// LocalELINMappingsSince is this node's mappings updated after since, oldest
// first: what to share to catch up.
func (r *Reader) LocalELINMappingsSince(ctx context.Context, since time.Time) ([]ELINMapping, error) {
	ms, err := queryELINs(ctx, r, `SELECT `+elinColumns+` FROM local_elin_mappings WHERE updated_ms > ? ORDER BY updated_ms, id`,
		since.UnixMilli())
	if err != nil {
		return nil, fmt.Errorf("read local ELIN mappings: %w", err)
	}
	return ms, nil
}

func queryELINs(ctx context.Context, r *Reader, q string, args ...any) ([]ELINMapping, error) {
	rows, err := r.db.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []ELINMapping
	for rows.Next() {
		var m ELINMapping
		var called, expires, updated int64
		if err := rows.Scan(&m.ID, &m.ELIN, &m.Site, &m.UserID, &called, &expires, &updated); err != nil {
			return nil, err
		}
		m.CalledAt, m.ExpiresAt, m.UpdatedAt = time.UnixMilli(called).UTC(), time.UnixMilli(expires).UTC(), time.UnixMilli(updated).UTC()
		out = append(out, m)
	}
	return out, rows.Err()
}
