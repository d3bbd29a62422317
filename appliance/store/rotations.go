package store

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// ErrInvalidRotation marks a rotation the store will not keep: no group,
// no member or no time.
var ErrInvalidRotation = errors.New("invalid rotation")

// Rotation is a rotating group's state: Member answered the group's last
// call, at At. Group is the call handling's key for the group, opaque
// here. It is replicated (put_rotation): the newest At wins, ties going
// to the greater Member, so the order commands arrive in does not matter.
type Rotation struct {
	Group  string    `json:"group"`
	Member string    `json:"member"`
	At     time.Time `json:"at"`
}

// Newer reports whether r supersedes old: a later At (at millisecond
// precision, as stored), or the same At and a greater Member. It is the
// rule Tx.PutRotation keeps rows by, for callers that merge rotations in
// memory.
func (r Rotation) Newer(old Rotation) bool {
	a, b := r.At.UnixMilli(), old.At.UnixMilli()
	return a > b || a == b && r.Member > old.Member
}

const (
	// upsertRotationSQL writes a group's rotation unless the row held is
	// as new or newer (Rotation.Newer).
	upsertRotationSQL = `INSERT INTO sdg_rotations (group_key, member, updated_ms) VALUES (?, ?, ?)
	ON CONFLICT (group_key) DO UPDATE SET member = excluded.member, updated_ms = excluded.updated_ms
	WHERE excluded.updated_ms > updated_ms OR (excluded.updated_ms = updated_ms AND excluded.member > member)`

	rotationColumns = `group_key, member, updated_ms`
)

func init() {
	// Prepared on the writer at Open with the rest (see prepareWrites).
	preparedWrites = append(preparedWrites, upsertRotationSQL)
}

// PutRotation records that r.Member answered r.Group's last call, unless
// the group's stored rotation is as new or newer (Rotation.Newer): a
// replay or a late, older command changes nothing. Only the FSM calls it.
// A rotation without group, member or time (ErrInvalidRotation) writes
// nothing.
func (tx *Tx) PutRotation(r Rotation) error {
	if r.Group == "" || r.Member == "" || r.At.IsZero() {
		return fmt.Errorf("%w: group %q, member %q at %s: needs a group, a member and a time",
			ErrInvalidRotation, r.Group, r.Member, formatTime(r.At))
	}
	if _, err := tx.exec(upsertRotationSQL, r.Group, r.Member, r.At.UnixMilli()); err != nil {
		return fmt.Errorf("put rotation of %s: %w", r.Group, err)
	}
	return nil
}

// Rotation is group's rotation: the member who answered its last call.
// A group with none is ErrNotFound (wrapped).
func (r *Reader) Rotation(ctx context.Context, group string) (Rotation, error) {
	rs, err := queryRotations(ctx, r.db, `SELECT `+rotationColumns+` FROM sdg_rotations WHERE group_key = ?`, group)
	if err != nil {
		return Rotation{}, fmt.Errorf("read rotation of %s: %w", group, err)
	}
	if len(rs) == 0 {
		return Rotation{}, fmt.Errorf("rotation of %s: %w", group, ErrNotFound)
	}
	return rs[0], nil
}

// Rotations is every group's rotation, by group key.
func (r *Reader) Rotations(ctx context.Context) ([]Rotation, error) {
	rs, err := queryRotations(ctx, r.db, `SELECT `+rotationColumns+` FROM sdg_rotations ORDER BY group_key`)
	if err != nil {
		return nil, fmt.Errorf("read rotations: %w", err)
	}
	return rs, nil
}

func queryRotations(ctx context.Context, q querier, query string, args ...any) ([]Rotation, error) {
	rows, err := q.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []Rotation
	for rows.Next() {
		var r Rotation
		var at int64
		if err := rows.Scan(&r.Group, &r.Member, &at); err != nil {
			return nil, err
		}
		r.At = time.UnixMilli(at).UTC()
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	return out, nil
}
