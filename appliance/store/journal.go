package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
	"time"
)

// ErrInvalidCallRecord marks a call record the store refuses to record (no
// id, no start or no end time). It is a caller's bug: retrying the same
// batch fails again.
var ErrInvalidCallRecord = errors.New("invalid call record")

// CallRecord is one call in the outage journal. Records are immutable:
// written once, when the call ends; the ID is stable (a UUID made by the
// node that handled the call), so writes are idempotent. Times are stored
// with millisecond precision and read back in UTC.
type CallRecord struct {
	ID          string    `json:"id"`
	CallID      string    `json:"call_id"` // SIP Call-ID of the caller's leg
	Caller      string    `json:"caller"`  // caller's SIP username (or the From user for calls from outside)
	CallerName  string    `json:"caller_name,omitempty"`
	Callee      string    `json:"callee"`      // callee's SIP username, empty when the call reached nobody
	Dialled     string    `json:"dialled"`     // what the caller dialled, as sent
	Destination string    `json:"destination"` // user | sdg | number | external | emergency | invalid
	Start       time.Time `json:"start"`
	Answer      time.Time `json:"answer,omitzero"` // zero when never answered
	End         time.Time `json:"end"`
	Disposition string    `json:"disposition"` // answered | busy | no_answer | unavailable | cancelled | failed | refused | transferred
	Status      int       `json:"status"`      // final SIP status given to the caller
	Node        string    `json:"node"`
	Site        string    `json:"site"` // caller's site
	// Route is the call's path through SDGs and IVR menus as one line, e.g.
	// "sdg:sdg-frontdesk > group:simultaneous > member:u-bob"; empty for a
	// plain call, and in records made before routes were recorded.
	Route string `json:"route,omitempty"`
}

// AppendJSON appends r to b as JSON, byte for byte what json.Marshal
// writes (the struct tags above), and several times faster: the journal
// upload encodes thousands of records a batch. It fails where json.Marshal
// does: on a time whose year is outside 0 to 9999.
func (r CallRecord) AppendJSON(b []byte) ([]byte, error) {
	var err error
	b = appendJSONString(append(b, `{"id":`...), r.ID)
	b = appendJSONString(append(b, `,"call_id":`...), r.CallID)
	b = appendJSONString(append(b, `,"caller":`...), r.Caller)
	if r.CallerName != "" {
		b = appendJSONString(append(b, `,"caller_name":`...), r.CallerName)
	}
	b = appendJSONString(append(b, `,"callee":`...), r.Callee)
	b = appendJSONString(append(b, `,"dialled":`...), r.Dialled)
	b = appendJSONString(append(b, `,"destination":`...), r.Destination)
	if b, err = appendJSONTime(append(b, `,"start":`...), r.Start); err != nil {
		return nil, fmt.Errorf("call record %s: start: %w", r.ID, err)
	}
	if !r.Answer.IsZero() {
		if b, err = appendJSONTime(append(b, `,"answer":`...), r.Answer); err != nil {
			return nil, fmt.Errorf("call record %s: answer: %w", r.ID, err)
		}
	}
	if b, err = appendJSONTime(append(b, `,"end":`...), r.End); err != nil {
		return nil, fmt.Errorf("call record %s: end: %w", r.ID, err)
	}
	b = appendJSONString(append(b, `,"disposition":`...), r.Disposition)
	b = strconv.AppendInt(append(b, `,"status":`...), int64(r.Status), 10)
	b = appendJSONString(append(b, `,"node":`...), r.Node)
	b = appendJSONString(append(b, `,"site":`...), r.Site)
	if r.Route != "" {
		b = appendJSONString(append(b, `,"route":`...), r.Route)
	}
	return append(b, '}'), nil
}

// appendJSONString appends s quoted as json.Marshal quotes it. Printable
// ASCII is written here, with the escapes json.Marshal uses for quotes,
// backslashes and <, > and & (a route's " > " separators); anything else
// goes through json.Marshal (its escapes of control characters, U+2028
// and U+2029, and of invalid UTF-8).
func appendJSONString(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c >= 0x7f {
			q, _ := json.Marshal(s) // a string always encodes
			return append(b, q...)
		}
	}
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); i++ {
		var esc string
		switch s[i] {
		case '"':
			esc = `\"`
		case '\\':
			esc = `\\`
		case '<':
			esc = `\u003c`
		case '>':
			esc = `\u003e`
		case '&':
			esc = `\u0026`
		default:
			continue
		}
		b = append(append(b, s[start:i]...), esc...)
		start = i + 1
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}

// appendJSONTime appends t as its MarshalJSON does: RFC 3339 with the
// nanoseconds it has, quoted, written here for a UTC time of years 0 to
// 9999 (every stored one), by MarshalJSON itself otherwise.
func appendJSONTime(b []byte, t time.Time) ([]byte, error) {
	if y := t.Year(); t.Location() != time.UTC || y < 0 || y > 9999 {
		q, err := t.MarshalJSON()
		if err != nil {
			return nil, err
		}
		return append(b, q...), nil
	}
	b = append(b, '"')
	b = t.AppendFormat(b, time.RFC3339Nano)
	return append(b, '"'), nil
}

// The two call record tables share their columns.
const (
	tableLocalCallRecords = "local_call_records"
	tableCallRecords      = "call_records"

	callRecordColumns = `id, call_id, caller, caller_name, callee, dialled, destination,
	start_ms, answer_ms, end_ms, disposition, status, node, site, route`

	// defaultCallRecordsLimit is Reader.CallRecords' limit when given none.
	defaultCallRecordsLimit = 1000
)

// insertCallRecordsSQL writes one record unless table already holds its id:
// records are immutable, so the first write wins and a replay is a no-op.
// (ON CONFLICT (id) rather than INSERT OR IGNORE, which would also swallow
// a NOT NULL violation.)
func insertCallRecordsSQL(table string) string {
	return `INSERT INTO ` + table + ` (` + callRecordColumns + `)
	VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
	ON CONFLICT (id) DO NOTHING`
}

var (
	insertLocalCallRecordsSQL = insertCallRecordsSQL(tableLocalCallRecords)
	insertCallRecordsRowsSQL  = insertCallRecordsSQL(tableCallRecords)

	// callRecordsSQL is the union of both tables, one row per id (the
	// local copy wins; they should be equal), ending at or after ?1
	// (unix ms), newest end first, ties by id, at most ?2 rows.
	callRecordsSQL = `SELECT ` + callRecordColumns + ` FROM local_call_records WHERE end_ms >= ?1
	UNION ALL
	SELECT ` + callRecordColumns + ` FROM call_records t WHERE end_ms >= ?1
		AND NOT EXISTS (SELECT 1 FROM local_call_records o WHERE o.id = t.id)
	ORDER BY end_ms DESC, id
	LIMIT ?2`

	countCallRecordsSQL = `SELECT count(*) FROM (SELECT id FROM local_call_records UNION SELECT id FROM call_records)`

	// pendingCallRecordsSQL is the union of both tables, one row per id
	// (the local copy wins), less the records the cloud has taken, that
	// come after (?2, ?3) in (end_ms, id) order, oldest end first, ties by
	// id, at most ?1 rows. With the (end_ms, id) indexes SQLite merges the
	// two tables in order from the cursor on and stops at the limit; each
	// row it passes costs a probe of call_records_uploaded's primary key
	// (and of local_call_records' id for a replicated row).
	pendingCallRecordsSQL = `SELECT ` + callRecordColumns + ` FROM local_call_records l
		WHERE (end_ms, id) > (?2, ?3)
		AND NOT EXISTS (SELECT 1 FROM call_records_uploaded u WHERE u.id = l.id)
	UNION ALL
	SELECT ` + callRecordColumns + ` FROM call_records t
		WHERE (end_ms, id) > (?2, ?3)
		AND NOT EXISTS (SELECT 1 FROM local_call_records o WHERE o.id = t.id)
		AND NOT EXISTS (SELECT 1 FROM call_records_uploaded u WHERE u.id = t.id)
	ORDER BY end_ms, id
	LIMIT ?1`

	// countPendingCallRecordsSQL counts the ids of both tables less those
	// uploaded. The ORDER BY makes SQLite merge the three id indexes in
	// step (a compound select in order) instead of filling temporary
	// b-trees for a UNION and a NOT IN, or probing two indexes per row:
	// 35 ms rather than 85 for 100,000 records, half of them uploaded
	// (BenchmarkPendingCallRecords/count).
	countPendingCallRecordsSQL = `SELECT count(*) FROM (
		SELECT id FROM local_call_records
		UNION SELECT id FROM call_records
		EXCEPT SELECT id FROM call_records_uploaded
		ORDER BY 1)`

	markUploadedSQL = `INSERT INTO call_records_uploaded (id, uploaded_ms) VALUES (?, ?) ON CONFLICT (id) DO NOTHING`
)

// journalWrites are the journal's statements prepared at Open.
var journalWrites = []string{insertLocalCallRecordsSQL, insertCallRecordsRowsSQL, markUploadedSQL}

func init() {
	// Prepared on the writer at Open with the rest (see prepareWrites).
	preparedWrites = append(preparedWrites, journalWrites...)
}

// checkCallRecords refuses a batch holding a record the store cannot keep.
func checkCallRecords(rs []CallRecord) error {
	for i, r := range rs {
		var what string
		switch {
		case r.ID == "":
			what = "empty id"
		case r.Start.IsZero():
			what = "zero start"
		case r.End.IsZero():
			what = "zero end"
		default:
			continue
		}
		return fmt.Errorf("%w: record %d (id %q): %s", ErrInvalidCallRecord, i, r.ID, what)
	}
	return nil
}

// putCallRecords inserts rs through the prepared statement query, after
// checking the whole batch.
func (tx *Tx) putCallRecords(query string, rs []CallRecord) error {
	if err := checkCallRecords(rs); err != nil {
		return err
	}
	st, err := tx.stmt(query)
	if err != nil {
		return err
	}
	defer st.Close()
	for _, r := range rs {
		var answer any // NULL: never answered
		if !r.Answer.IsZero() {
			answer = r.Answer.UnixMilli()
		}
		if _, err := st.ExecContext(tx.ctx, r.ID, r.CallID, r.Caller, r.CallerName, r.Callee, r.Dialled,
			r.Destination, r.Start.UnixMilli(), answer, r.End.UnixMilli(), r.Disposition, r.Status,
			r.Node, r.Site, r.Route); err != nil {
			return fmt.Errorf("call record %s: %w", r.ID, err)
		}
	}
	return nil
}

// PutLocalCallRecords records calls this node handled in local_call_records,
// in one transaction for the whole slice, at once and whatever the cluster's
// state. A record whose ID is already stored is ignored (the first write
// wins), so a retry is harmless. Only this node's call handling calls it.
// A batch holding an invalid record (ErrInvalidCallRecord) writes nothing.
func (s *Store) PutLocalCallRecords(rs []CallRecord) error {
	if len(rs) == 0 {
		return nil
	}
	return s.write("put local call records", func(tx *Tx) error {
		if err := tx.putCallRecords(insertLocalCallRecordsSQL, rs); err != nil {
			return fmt.Errorf("put local call records: %w", err)
		}
		return nil
	})
}

// PutCallRecords records call records shared through Raft in the replicated
// call_records table, with the rules of Store.PutLocalCallRecords. Only the
// FSM calls it.
func (tx *Tx) PutCallRecords(rs []CallRecord) error {
	if len(rs) == 0 {
		return nil
	}
	if err := tx.putCallRecords(insertCallRecordsRowsSQL, rs); err != nil {
		return fmt.Errorf("put call records: %w", err)
	}
	return nil
}

// MarkCallRecordsUploaded records that the cloud has taken the records
// with these ids (at is the proposer's time). Marking an id twice, or an
// id the node has no record of (yet), is harmless. Only the FSM calls it.
func (tx *Tx) MarkCallRecordsUploaded(ids []string, at time.Time) error {
	for i, id := range ids {
		if id == "" {
			return fmt.Errorf("%w: mark uploaded: id %d is empty", ErrInvalidCallRecord, i)
		}
	}
	st, err := tx.stmt(markUploadedSQL)
	if err != nil {
		return err
	}
	defer st.Close()
	for _, id := range ids {
		if _, err := st.ExecContext(tx.ctx, id, at.UnixMilli()); err != nil {
			return fmt.Errorf("mark call record %s uploaded: %w", id, err)
		}
	}
	return nil
}

// JournalCursor is a place in the order the journal is uploaded in (End,
// then ID): PendingCallRecords after a cursor starts with the records
// that come after it. The zero JournalCursor is the start.
type JournalCursor struct {
	End time.Time // millisecond precision, like the records'
	ID  string
}

// CursorOf is the place of r in the upload order: reading after it starts
// with the record that follows r.
func CursorOf(r CallRecord) JournalCursor { return JournalCursor{End: r.End, ID: r.ID} }

// IsZero says whether c is the start.
func (c JournalCursor) IsZero() bool { return c.End.IsZero() && c.ID == "" }

// PendingCallRecords is the journal the cloud has not taken yet: records of
// both tables, one per ID, that come after after in the upload order
// (oldest End first, ties by ID; the zero cursor is the start), at most
// limit (1000 when limit <= 0). Reading on from the last record's cursor
// goes through the journal a batch at a time, each read costing its batch
// rather than what is before it; a record that arrives meanwhile with an
// older End is behind the cursor, and only a read from the start finds it.
func (r *Reader) PendingCallRecords(ctx context.Context, after JournalCursor, limit int) ([]CallRecord, error) {
	if limit <= 0 {
		limit = defaultCallRecordsLimit
	}
	endMS := int64(math.MinInt64) // every record comes after the start
	if !after.IsZero() {
		endMS = after.End.UnixMilli()
	}
	rs, err := queryCallRecords(ctx, r.db, pendingCallRecordsSQL, limit, endMS, after.ID)
	if err != nil {
		return nil, fmt.Errorf("read pending call records after (%s, %q): %w", formatTime(after.End), after.ID, err)
	}
	return rs, nil
}

// CountPendingCallRecords counts the records the cloud has not taken yet.
func (r *Reader) CountPendingCallRecords(ctx context.Context) (int, error) {
	var n int
	if err := r.db.QueryRowContext(ctx, countPendingCallRecordsSQL).Scan(&n); err != nil {
		return 0, fmt.Errorf("count pending call records: %w", err)
	}
	return n, nil
}

// LocalCallRecordsSince is the rows of local_call_records that ended after
// since (strictly, at millisecond precision), oldest end first, ties by ID:
// what to share to catch up. Pass the End of the last record shared.
func (r *Reader) LocalCallRecordsSince(ctx context.Context, since time.Time) ([]CallRecord, error) {
	rs, err := queryCallRecords(ctx, r.db,
		`SELECT `+callRecordColumns+` FROM local_call_records WHERE end_ms > ? ORDER BY end_ms, id`,
		since.UnixMilli())
	if err != nil {
		return nil, fmt.Errorf("read local call records since %s: %w", formatTime(since), err)
	}
	return rs, nil
}

// CallRecords is the journal: the records of local_call_records and the
// replicated call_records, one per ID, that ended at or after since, newest
// End first (ties by ID), at most limit of them (1000 when limit <= 0). A
// zero since means all.
func (r *Reader) CallRecords(ctx context.Context, since time.Time, limit int) ([]CallRecord, error) {
	if limit <= 0 {
		limit = defaultCallRecordsLimit
	}
	rs, err := queryCallRecords(ctx, r.db, callRecordsSQL, ceilMilli(since), limit)
	if err != nil {
		return nil, fmt.Errorf("read call records since %s: %w", formatTime(since), err)
	}
	return rs, nil
}

// CountCallRecords counts the distinct call records across both tables.
func (r *Reader) CountCallRecords(ctx context.Context) (int, error) {
	var n int
	if err := r.db.QueryRowContext(ctx, countCallRecordsSQL).Scan(&n); err != nil {
		return 0, fmt.Errorf("count call records: %w", err)
	}
	return n, nil
}

func queryCallRecords(ctx context.Context, q querier, query string, args ...any) ([]CallRecord, error) {
	rows, err := q.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var rs []CallRecord
	for rows.Next() {
		var c CallRecord
		var start, end int64
		var answer sql.NullInt64
		if err := rows.Scan(&c.ID, &c.CallID, &c.Caller, &c.CallerName, &c.Callee, &c.Dialled,
			&c.Destination, &start, &answer, &end, &c.Disposition, &c.Status, &c.Node, &c.Site, &c.Route); err != nil {
			return nil, err
		}
		c.Start = time.UnixMilli(start).UTC()
		if answer.Valid {
			c.Answer = time.UnixMilli(answer.Int64).UTC()
		}
		c.End = time.UnixMilli(end).UTC()
		rs = append(rs, c)
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	return rs, nil
}
