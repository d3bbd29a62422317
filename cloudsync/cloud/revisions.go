package cloud

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/outpost-voice/outpost/cloudsync/protocol"
)

// diffOps is the JSON array of the ops that turn old into new.
func diffOps(old, new []byte) ([]byte, error) {
	ops, err := protocol.Diff(old, new)
	if err != nil {
		return nil, fmt.Errorf("diff: %w", err)
	}
	if ops == nil {
		ops = []protocol.Op{}
	}
	data, err := json.Marshal(ops)
	if err != nil {
		return nil, fmt.Errorf("encode ops: %w", err)
	}
	return data, nil
}

// Changes returns every revision after since up to the current one, in
// order. since equal to the current revision gives no revisions (the
// caller waits for one, see Watch). It fails with ErrAhead when since is
// past the current revision, and ErrGone when the revisions after since are
// no longer all kept, or would weigh more than the snapshot itself (and
// more than minDeltaBudget): the appliance should fetch the snapshot.
func (s *Store) Changes(ctx context.Context, since int64) (protocol.Changes, error) {
	rev, doc := s.Current()
	ch := protocol.Changes{From: since, To: rev, Revisions: []protocol.Revision{}}
	switch {
	case since > rev:
		return ch, fmt.Errorf("%w: since %d, current %d", ErrAhead, since, rev)
	case since == rev:
		return ch, nil
	case since < 0:
		return ch, fmt.Errorf("%w: since %d", ErrGone, since)
	}
	budget := max(len(doc), s.deltaBudget)
	rows, err := s.rdb.QueryContext(ctx,
		`SELECT revision, ops FROM revisions WHERE revision > ? AND revision <= ? ORDER BY revision`, since, rev)
	if err != nil {
		return ch, fmt.Errorf("read revisions after %d: %w", since, err)
	}
	defer rows.Close()
	size := 0
	want := since + 1
	for rows.Next() {
		var r protocol.Revision
		var ops string
		if err := rows.Scan(&r.Revision, &ops); err != nil {
			return ch, fmt.Errorf("read revisions after %d: %w", since, err)
		}
		if r.Revision != want {
			return ch, fmt.Errorf("%w: since %d, oldest kept %d", ErrGone, since, r.Revision-1)
		}
		if size += len(ops); size > budget {
			return ch, fmt.Errorf("%w: the changes after %d weigh more than the snapshot", ErrGone, since)
		}
		if err := json.Unmarshal([]byte(ops), &r.Ops); err != nil {
			return ch, fmt.Errorf("revision %d: stored ops: %w", r.Revision, err)
		}
		ch.Revisions = append(ch.Revisions, r)
		want++
	}
	if err := rows.Err(); err != nil {
		return ch, fmt.Errorf("read revisions after %d: %w", since, err)
	}
	if want != rev+1 {
		return ch, fmt.Errorf("%w: since %d, revisions up to %d missing", ErrGone, since, rev)
	}
	return ch, nil
}

// OldestKept is the oldest revision whose ops the store still holds (0
// when none).
func (s *Store) OldestKept(ctx context.Context) (int64, error) {
	var n int64
	if err := s.rdb.QueryRowContext(ctx, `SELECT coalesce(min(revision), 0) FROM revisions`).Scan(&n); err != nil {
		return 0, fmt.Errorf("oldest revision: %w", err)
	}
	return n, nil
}
