package node

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/outpost-voice/outpost/appliance/cluster"
)

// nodeJournal is the outage journal as the uploader sees it: the records
// of both tables the cloud has not taken, marked through Raft once it has.
type nodeJournal struct{ n *Node }

func (j nodeJournal) Pending(ctx context.Context, limit int) ([]json.RawMessage, []string, error) {
	rs, err := j.n.store.Reader().PendingCallRecords(ctx, limit)
	if err != nil {
		return nil, nil, err
	}
	records, ids := make([]json.RawMessage, len(rs)), make([]string, len(rs))
	for i, r := range rs {
		if records[i], err = json.Marshal(r); err != nil {
			return nil, nil, fmt.Errorf("encode call record %s: %w", r.ID, err)
		}
		ids[i] = r.ID
	}
	return records, ids, nil
}

func (j nodeJournal) MarkUploaded(ctx context.Context, ids []string) error {
	cmd, err := cluster.EncodeMarkUploaded(ids, time.Now().UTC())
	if err != nil {
		return err
	}
	res, err := j.n.cluster.Apply(ctx, cmd)
	if err == nil {
		err = res.Err
	}
	if err != nil {
		return fmt.Errorf("mark %d call records uploaded: %w", len(ids), err)
	}
	return nil
}
