package node

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/outpost-voice/outpost/appliance/cluster"
	"github.com/outpost-voice/outpost/appliance/store"
	"github.com/outpost-voice/outpost/cloudsync"
)

// nodeJournal is the outage journal as the uploader sees it: the records
// of both tables the cloud has not taken, marked through Raft once it has.
type nodeJournal struct{ n *Node }

func (j nodeJournal) Pending(ctx context.Context, after string, limit int) (cloudsync.PendingBatch, error) {
	cur, err := parseJournalCursor(after)
	if err != nil {
		return cloudsync.PendingBatch{}, err
	}
	rs, err := j.n.store.Reader().PendingCallRecords(ctx, cur, limit)
	if err != nil {
		return cloudsync.PendingBatch{}, err
	}
	// One buffer for the batch, the records slices of it.
	var buf []byte
	ends := make([]int, len(rs))
	for i, r := range rs {
		if buf, err = r.AppendJSON(buf); err != nil {
			return cloudsync.PendingBatch{}, fmt.Errorf("encode call record %s: %w", r.ID, err)
		}
		ends[i] = len(buf)
	}
	b := cloudsync.PendingBatch{Records: make([]json.RawMessage, len(rs)), IDs: make([]string, len(rs)), Next: after}
	start := 0
	for i, r := range rs {
		b.Records[i] = json.RawMessage(buf[start:ends[i]:ends[i]])
		b.IDs[i] = r.ID
		start = ends[i]
	}
	if len(rs) > 0 {
		b.Next = formatJournalCursor(store.CursorOf(rs[len(rs)-1]))
	}
	return b, nil
}

// A journal cursor, as the uploader carries it, is "<end unix ms>:<id>";
// "" is the start.
func formatJournalCursor(c store.JournalCursor) string {
	return strconv.FormatInt(c.End.UnixMilli(), 10) + ":" + c.ID
}

func parseJournalCursor(s string) (store.JournalCursor, error) {
	if s == "" {
		return store.JournalCursor{}, nil
	}
	ms, id, ok := strings.Cut(s, ":")
	end, err := strconv.ParseInt(ms, 10, 64)
	if !ok || err != nil || id == "" {
		return store.JournalCursor{}, fmt.Errorf("journal cursor %q: want <end unix ms>:<id>", s)
	}
	return store.JournalCursor{End: time.UnixMilli(end).UTC(), ID: id}, nil
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
