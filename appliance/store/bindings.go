package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
)

// ErrInvalidBinding marks a binding the store refuses to record (no id, no
// AOR, no version). It is a caller's bug: retrying the same batch fails again.
var ErrInvalidBinding = errors.New("invalid binding")

// Binding is one phone contact registered for a user: a row of the presence
// plane's local_bindings (this node's own) or bindings (the cluster's
// replicated view). Times are stored with millisecond precision.
type Binding struct {
	ID         string    `json:"id"`  // stable: the registrar derives it from AOR + instance-id (or contact URI)
	AOR        string    `json:"aor"` // "alice@acme.example"
	UserID     string    `json:"user_id"`
	Username   string    `json:"username"`
	Site       string    `json:"site"`                  // the user's site
	Contact    string    `json:"contact"`               // the Contact URI as registered
	InstanceID string    `json:"instance_id,omitempty"` // RFC 5626 +sip.instance
	RegID      int       `json:"reg_id,omitempty"`
	CallID     string    `json:"call_id"`
	CSeq       uint32    `json:"cseq"`
	Transport  string    `json:"transport"` // udp | tcp | tls
	Source     string    `json:"source"`    // ip:port the REGISTER came from (received/rport): the flow for routing back through NAT
	Node       string    `json:"node"`      // node that holds the flow
	UserAgent  string    `json:"user_agent,omitempty"`
	Expires    time.Time `json:"expires"`           // absolute
	UpdatedAt  time.Time `json:"updated_at"`        // version: last writer wins
	Deleted    bool      `json:"deleted,omitempty"` // tombstone (unregistered), kept until pruned so an older upsert cannot resurrect it
}

// The two binding tables share their columns.
const (
	tableLocalBindings = "local_bindings"
	tableBindings      = "bindings"

	bindingColumns = `id, aor, user_id, username, site, contact, instance_id, reg_id,
	call_id, cseq, transport, source, node, user_agent, expires_ms, updated_ms, deleted`
)

// upsertBindingsSQL writes one binding unless the stored row with its id
// is as new or newer: last writer wins, and an equal version is a replay,
// ignored. (Tried: one JSON text a batch taken apart by jsonb_each, to cross
// into C once rather than 17 times a row; it made refreshes slower.)
func upsertBindingsSQL(table string) string {
	return `INSERT INTO ` + table + ` (` + bindingColumns + `)
	VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
	ON CONFLICT (id) DO UPDATE SET aor = excluded.aor, user_id = excluded.user_id,
		username = excluded.username, site = excluded.site, contact = excluded.contact,
		instance_id = excluded.instance_id, reg_id = excluded.reg_id, call_id = excluded.call_id,
		cseq = excluded.cseq, transport = excluded.transport, source = excluded.source,
		node = excluded.node, user_agent = excluded.user_agent, expires_ms = excluded.expires_ms,
		updated_ms = excluded.updated_ms, deleted = excluded.deleted
	WHERE excluded.updated_ms > ` + table + `.updated_ms`
}

var (
	upsertLocalBindingsSQL = upsertBindingsSQL(tableLocalBindings)
	upsertBindingsRowsSQL  = upsertBindingsSQL(tableBindings)
	pruneLocalBindingsSQL  = `DELETE FROM local_bindings WHERE expires_ms < ?`
	pruneBindingsSQL       = `DELETE FROM bindings WHERE expires_ms < ?`
)

// bindingWrites are the presence-plane statements prepared at Open.
var bindingWrites = []string{upsertLocalBindingsSQL, upsertBindingsRowsSQL, pruneLocalBindingsSQL, pruneBindingsSQL}

// liveBindingsSQL selects cols (of table alias t) of the live bindings of
// the union of local_bindings and bindings, one row per id: a row is the
// winner when the other table has no newer row with its id (a tie goes to
// local_bindings), and it is live when the winner is neither a tombstone nor
// expired. ?1 is now in unix milliseconds; filter is ANDed into both halves
// (it may use ?2). With scan, SQLite is kept off the expires_ms index: when
// a query reads most bindings, and most are live, a plain scan is faster.
func liveBindingsSQL(cols, filter string, scan bool) string {
	live := "t.deleted = 0 AND t.expires_ms > ?1"
	if scan {
		live = "t.deleted = 0 AND +t.expires_ms > ?1"
	}
	if filter != "" {
		live += " AND " + filter
	}
	return `SELECT ` + cols + ` FROM local_bindings t WHERE ` + live + `
		AND NOT EXISTS (SELECT 1 FROM bindings o WHERE o.id = t.id AND o.updated_ms > t.updated_ms)
	UNION ALL
	SELECT ` + cols + ` FROM bindings t WHERE ` + live + `
		AND NOT EXISTS (SELECT 1 FROM local_bindings o WHERE o.id = t.id AND o.updated_ms >= t.updated_ms)`
}

var (
	// Sorted in Go: for two or three rows a temp b-tree costs more than the query.
	bindingsByAORSQL = liveBindingsSQL(bindingColumns, "t.aor = ?2", false)
	allBindingsSQL   = liveBindingsSQL(bindingColumns, "", false) + ` ORDER BY 2, 1`
	bindingCountsSQL = `SELECT site, count(*) FROM (` + liveBindingsSQL("t.site", "", true) + `) GROUP BY site`
	nodeCountsSQL    = `SELECT node, count(*) FROM (` + liveBindingsSQL("t.node", "", true) + `) GROUP BY node`
)

// checkBindings refuses a batch holding a binding the store cannot version.
func checkBindings(bs []Binding) error {
	for i, b := range bs {
		var what string
		switch {
		case b.ID == "":
			what = "empty id"
		case b.AOR == "":
			what = "empty aor"
		case b.UpdatedAt.IsZero():
			what = "zero updated_at"
		default:
			continue
		}
		return fmt.Errorf("%w: binding %d (id %q): %s", ErrInvalidBinding, i, b.ID, what)
	}
	return nil
}

// putBindings upserts bs through the prepared batch statement query.
func (tx *Tx) putBindings(query string, bs []Binding) error {
	if err := checkBindings(bs); err != nil {
		return err
	}
	st, err := tx.stmt(query)
	if err != nil {
		return err
	}
	defer st.Close()
	return execBindings(tx.ctx, st, bs)
}

// execBindings runs an upsertBindingsSQL statement for each of bs, in order.
func execBindings(ctx context.Context, st *sql.Stmt, bs []Binding) error {
	for _, b := range bs {
		if _, err := st.ExecContext(ctx, b.ID, b.AOR, b.UserID, b.Username, b.Site, b.Contact,
			b.InstanceID, b.RegID, b.CallID, int64(b.CSeq), b.Transport, b.Source, b.Node, b.UserAgent,
			b.Expires.UnixMilli(), b.UpdatedAt.UnixMilli(), b.Deleted); err != nil {
			return fmt.Errorf("binding %s: %w", b.ID, err)
		}
	}
	return nil
}

// PutLocalBindings records this node's own bindings in local_bindings, in
// one transaction for the whole slice, at once and whatever the cluster's
// state. Each binding replaces the stored one with its ID only if its
// UpdatedAt is strictly newer (at millisecond precision); tombstones
// (Deleted) are stored like any row. Only this node's registrar calls it.
// A batch holding an invalid binding (ErrInvalidBinding) writes nothing.
func (s *Store) PutLocalBindings(bs []Binding) error {
	if len(bs) == 0 {
		return nil
	}
	return s.write("put local bindings", func(tx *Tx) error {
		if err := tx.putBindings(upsertLocalBindingsSQL, bs); err != nil {
			return fmt.Errorf("put local bindings: %w", err)
		}
		return nil
	})
}

// PruneLocalBindings deletes this node's bindings, tombstones or live, that
// expired before before, and returns how many it deleted.
func (s *Store) PruneLocalBindings(before time.Time) (int, error) {
	var n int64
	err := s.write("prune local bindings", func(tx *Tx) error {
		res, err := tx.exec(pruneLocalBindingsSQL, ceilMilli(before))
		if err == nil {
			n, err = res.RowsAffected()
		}
		if err != nil {
			return fmt.Errorf("prune local bindings: %w", err)
		}
		return nil
	})
	return int(n), err
}

// PutBindings records bindings shared through Raft in the replicated
// bindings table, with the rules of Store.PutLocalBindings. Only the FSM
// calls it.
func (tx *Tx) PutBindings(bs []Binding) error {
	if err := tx.putBindings(upsertBindingsRowsSQL, bs); err != nil {
		return fmt.Errorf("put bindings: %w", err)
	}
	return nil
}

// PruneBindings deletes replicated bindings, tombstones or live, that
// expired before before. The FSM must take before from the command it
// applies, never from its clock, so every node deletes the same rows.
func (tx *Tx) PruneBindings(before time.Time) error {
	if _, err := tx.exec(pruneBindingsSQL, ceilMilli(before)); err != nil {
		return fmt.Errorf("prune bindings: %w", err)
	}
	return nil
}

// ceilMilli is t in unix milliseconds rounded up, so that for a stored
// millisecond value x, x < ceilMilli(t) exactly when x < t.
func ceilMilli(t time.Time) int64 {
	ms := t.UnixMilli()
	if t.Nanosecond()%int(time.Millisecond) != 0 {
		ms++
	}
	return ms
}

// LocalBindings is every row of local_bindings, tombstones included, oldest
// UpdatedAt first: the registrar reloads its location service from it at
// start and re-shares it after a partition.
func (r *Reader) LocalBindings(ctx context.Context) ([]Binding, error) {
	bs, err := queryBindings(ctx, r.db,
		`SELECT `+bindingColumns+` FROM local_bindings ORDER BY updated_ms, id`)
	if err != nil {
		return nil, fmt.Errorf("read local bindings: %w", err)
	}
	return bs, nil
}

// LocalBindingsSince is the rows of local_bindings, tombstones included,
// whose UpdatedAt is after since, oldest first: what to share to catch up.
func (r *Reader) LocalBindingsSince(ctx context.Context, since time.Time) ([]Binding, error) {
	bs, err := queryBindings(ctx, r.db,
		`SELECT `+bindingColumns+` FROM local_bindings WHERE updated_ms > ? ORDER BY updated_ms, id`,
		since.UnixMilli())
	if err != nil {
		return nil, fmt.Errorf("read local bindings since %s: %w", formatTime(since), err)
	}
	return bs, nil
}

// Bindings is the live bindings of aor at now, sorted by ID: from this
// node's local_bindings and the replicated bindings, one per ID, the newest
// UpdatedAt winning, so a node sees its own flows at once and everyone
// else's as Raft delivers them. A tombstone that wins hides the binding.
func (r *Reader) Bindings(ctx context.Context, aor string, now time.Time) ([]Binding, error) {
	rows, err := r.bindingsByAOR.QueryContext(ctx, now.UnixMilli(), aor)
	if err != nil {
		return nil, fmt.Errorf("read bindings of %s: %w", aor, err)
	}
	bs, err := scanBindings(rows)
	if err != nil {
		return nil, fmt.Errorf("read bindings of %s: %w", aor, err)
	}
	slices.SortFunc(bs, func(a, b Binding) int { return strings.Compare(a.ID, b.ID) })
	return bs, nil
}

// AllBindings is every live binding at now, merged as in Bindings, sorted by
// AOR then ID.
func (r *Reader) AllBindings(ctx context.Context, now time.Time) ([]Binding, error) {
	bs, err := queryBindings(ctx, r.db, allBindingsSQL, now.UnixMilli())
	if err != nil {
		return nil, fmt.Errorf("read all bindings: %w", err)
	}
	return bs, nil
}

// BindingCounts counts the live bindings at now, merged as in Bindings (so
// each ID once), in all and per site.
func (r *Reader) BindingCounts(ctx context.Context, now time.Time) (total int, perSite map[string]int, err error) {
	rows, err := r.db.QueryContext(ctx, bindingCountsSQL, now.UnixMilli())
	if err != nil {
		return 0, nil, fmt.Errorf("count bindings: %w", err)
	}
	defer rows.Close()
	perSite = map[string]int{}
	for rows.Next() {
		var site string
		var n int
		if err := rows.Scan(&site, &n); err != nil {
			return 0, nil, fmt.Errorf("count bindings: %w", err)
		}
		perSite[site] = n
		total += n
	}
	if err := rows.Err(); err != nil {
		return 0, nil, fmt.Errorf("count bindings: %w", err)
	}
	return total, perSite, nil
}

// BindingCountsByNode counts the live bindings at now, merged as in
// Bindings, per node holding their flow (the DNS server's load weights).
func (r *Reader) BindingCountsByNode(ctx context.Context, now time.Time) (map[string]int, error) {
	rows, err := r.db.QueryContext(ctx, nodeCountsSQL, now.UnixMilli())
	if err != nil {
		return nil, fmt.Errorf("count bindings per node: %w", err)
	}
	defer rows.Close()
	perNode := map[string]int{}
	for rows.Next() {
		var node string
		var n int
		if err := rows.Scan(&node, &n); err != nil {
			return nil, fmt.Errorf("count bindings per node: %w", err)
		}
		perNode[node] = n
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("count bindings per node: %w", err)
	}
	return perNode, nil
}

func queryBindings(ctx context.Context, q querier, query string, args ...any) ([]Binding, error) {
	rows, err := q.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	return scanBindings(rows)
}

// scanBindings reads rows of bindingColumns and closes rows.
func scanBindings(rows *sql.Rows) ([]Binding, error) {
	defer rows.Close()
	var bs []Binding
	for rows.Next() {
		var b Binding
		var cseq, expires, updated int64
		if err := rows.Scan(&b.ID, &b.AOR, &b.UserID, &b.Username, &b.Site, &b.Contact,
			&b.InstanceID, &b.RegID, &b.CallID, &cseq, &b.Transport, &b.Source, &b.Node, &b.UserAgent,
			&expires, &updated, &b.Deleted); err != nil {
			return nil, err
		}
		b.CSeq = uint32(cseq)
		b.Expires = time.UnixMilli(expires).UTC()
		b.UpdatedAt = time.UnixMilli(updated).UTC()
		bs = append(bs, b)
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	return bs, nil
}

// keepLocal makes dst's local-first table a copy of the same table of the
// live database at livePath, so that a restore (dst is the backup about to
// be copied over the live database) replaces the replicated tables but keeps
// this node's own rows: a Raft snapshot made on another node carries that
// node's local rows, which are not ours (they reach us replicated). The
// caller holds the write lock, so the live rows cannot change meanwhile. It
// returns how many rows it kept. table and columns are constants of this
// package, never input.
func keepLocal(ctx context.Context, dst *sql.DB, livePath, table, columns string) (n int64, err error) {
	conn, err := dst.Conn(ctx)
	if err != nil {
		return 0, err
	}
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, `ATTACH DATABASE ? AS live`, livePath); err != nil {
		return 0, fmt.Errorf("attach the live database: %w", err)
	}
	defer func() {
		if _, derr := conn.ExecContext(ctx, `DETACH DATABASE live`); derr != nil && err == nil {
			err = fmt.Errorf("detach the live database: %w", derr)
		}
	}()
	tx, err := conn.BeginTx(ctx, nil)
	if err != nil {
		return 0, err
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, `DELETE FROM main.`+table); err != nil {
		return 0, fmt.Errorf("drop the backup's %s: %w", table, err)
	}
	res, err := tx.ExecContext(ctx, `INSERT INTO main.`+table+` (`+columns+`) SELECT `+columns+` FROM live.`+table)
	if err == nil {
		n, err = res.RowsAffected()
	}
	if err != nil {
		return 0, fmt.Errorf("copy this node's %s: %w", table, err)
	}
	if err := tx.Commit(); err != nil {
		return 0, err
	}
	return n, nil
}
