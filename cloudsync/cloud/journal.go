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

// JournalRecord is one uploaded call record: its id and its JSON object.
type JournalRecord struct {
	ID   string
	JSON json.RawMessage
}

// PutJournal stores a batch of appliance's records, each once by id, and
// remembers the receipt under key. A key the appliance used before stores
// nothing and returns the first receipt again, with replayed true. The
// whole batch is one transaction: it is stored whole or not at all.
func (s *Store) PutJournal(ctx context.Context, appliance, key string, records []JournalRecord, now time.Time) (
	receipt protocol.JournalReceipt, replayed bool, err error) {
	tx, err := s.wdb.BeginTx(ctx, nil)
	if err != nil {
		return receipt, false, fmt.Errorf("journal of %s: begin: %w", appliance, err)
	}
	defer tx.Rollback()
	var stored string
	err = tx.QueryRowContext(ctx, `SELECT response FROM idempotency_keys WHERE appliance = ? AND key = ?`,
		appliance, key).Scan(&stored)
	switch {
	case err == nil:
		if err := json.Unmarshal([]byte(stored), &receipt); err != nil {
			return receipt, false, fmt.Errorf("journal of %s: stored answer for key %q: %w", appliance, key, err)
		}
		return receipt, true, nil
	case !errors.Is(err, sql.ErrNoRows):
		return receipt, false, fmt.Errorf("journal of %s: read key: %w", appliance, err)
	}
	st, err := tx.PrepareContext(ctx, `INSERT INTO journal_records (appliance, record_id, record, received_ms)
		VALUES (?, ?, ?, ?) ON CONFLICT (appliance, record_id) DO NOTHING`)
	if err != nil {
		return receipt, false, fmt.Errorf("journal of %s: %w", appliance, err)
	}
	defer st.Close()
	at := now.UnixMilli()
	for _, r := range records {
		res, err := st.ExecContext(ctx, appliance, r.ID, string(r.JSON), at)
		if err != nil {
			return receipt, false, fmt.Errorf("journal of %s: record %q: %w", appliance, r.ID, err)
		}
		n, err := res.RowsAffected()
		if err != nil {
			return receipt, false, fmt.Errorf("journal of %s: record %q: %w", appliance, r.ID, err)
		}
		if n == 1 {
			receipt.Accepted++
		} else {
			receipt.Duplicates++
		}
	}
	answer, err := json.Marshal(receipt)
	if err != nil {
		return receipt, false, fmt.Errorf("journal of %s: %w", appliance, err)
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO idempotency_keys (appliance, key, response, created_ms) VALUES (?, ?, ?, ?)`,
		appliance, key, string(answer), at); err != nil {
		return receipt, false, fmt.Errorf("journal of %s: remember key: %w", appliance, err)
	}
	if err := tx.Commit(); err != nil {
		return receipt, false, fmt.Errorf("journal of %s: commit: %w", appliance, err)
	}
	return receipt, false, nil
}

// Journal is every record appliance uploaded, each once, in the order the
// cloud first received them.
func (s *Store) Journal(ctx context.Context, appliance string) ([]json.RawMessage, error) {
	rows, err := s.rdb.QueryContext(ctx, `SELECT record FROM journal_records WHERE appliance = ? ORDER BY seq`, appliance)
	if err != nil {
		return nil, fmt.Errorf("read journal of %s: %w", appliance, err)
	}
	defer rows.Close()
	out := []json.RawMessage{}
	for rows.Next() {
		var rec string
		if err := rows.Scan(&rec); err != nil {
			return nil, fmt.Errorf("read journal of %s: %w", appliance, err)
		}
		out = append(out, json.RawMessage(rec))
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read journal of %s: %w", appliance, err)
	}
	return out, nil
}
