package store

import (
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/mattn/go-sqlite3"

	"github.com/outpost-voice/outpost/account"
)

// Names recorded in null_lists for lists that were null in the snapshot.
const (
	nullSites          = "sites"
	nullUsers          = "users"
	nullSDGs           = "sdgs"
	nullNumbers        = "numbers"
	nullTrunks         = "trunks"
	nullAdmins         = "admins"
	nullCallerIDs      = "callout.caller_ids"
	nullAllowedOrigins = "embed.allowed_origins"
)

// configTables are the tables ReplaceConfig empties and refills. With no
// foreign keys and no triggers, each DELETE is SQLite's fast truncate.
var configTables = []string{
	"dial_index",
	"site_emergency_numbers", "site_elins", "sites",
	"user_numbers", "users",
	"sdgs", "numbers", "trunks",
	"callout_caller_ids", "callout",
	"admins", "embed_origins", "prompts",
	"null_lists", "account", "snapshot_doc",
}

// ErrConflict marks a snapshot the tables cannot hold (two things behind one
// dial string, a duplicate id, username or number). It depends only on the
// snapshot, so every node refuses it alike; account.Validate catches all of
// these first, and this is the store's own guard.
var ErrConflict = errors.New("snapshot conflicts with the store's constraints")

// ReplaceConfig replaces every config table with snap, rebuilds dial_index,
// stores raw (the canonical JSON document; when nil, snap.Encode() is
// stored) and sets the revision to snap.Revision. It is atomic on its own: on
// error the transaction is as it was before the call. It does not validate
// snap (account.Validate does) beyond what the tables need: unique site,
// user, SDG, trunk and admin ids, SIP usernames, numbers, prompt names and
// dial strings.
func (tx *Tx) ReplaceConfig(snap *account.Snapshot, raw []byte) error {
	if snap == nil {
		return errors.New("replace config: nil snapshot")
	}
	if raw == nil {
		var err error
		if raw, err = snap.Encode(); err != nil {
			return fmt.Errorf("replace config: %w", err)
		}
	}
	if err := checkDials(snap); err != nil {
		return fmt.Errorf("replace config revision %d: %w: %w", snap.Revision, ErrConflict, err)
	}
	err := tx.Savepoint(func() error {
		for _, table := range configTables {
			if _, err := tx.tx.ExecContext(tx.ctx, "DELETE FROM "+table); err != nil {
				return fmt.Errorf("clear %s: %w", table, err)
			}
		}
		w := &configWriter{tx: tx}
		w.header(snap, raw)
		writeAll(w.sites(), snap.Sites)
		writeAll(w.users(), snap.Users)
		writeAll(w.sdgs(), snap.SDGs)
		writeAll(w.numbers(), snap.Numbers)
		writeAll(w.trunks(), snap.Trunks)
		w.callout(snap.Callout)
		writeAll(w.admins(), snap.Admins)
		w.embed(snap.Embed)
		writeAll(w.prompts(), snap.Prompts)
		w.dialIndex()
		return w.err
	})
	var serr sqlite3.Error
	if errors.As(err, &serr) && serr.Code == sqlite3.ErrConstraint {
		return fmt.Errorf("replace config revision %d: %w: %w", snap.Revision, ErrConflict, err)
	}
	if err != nil {
		return fmt.Errorf("replace config revision %d: %w", snap.Revision, err)
	}
	return nil
}

// checkDials refuses a snapshot in which one dial string (an extension or an
// account number) would reach two things: dial_index could not hold it, and
// the error says which two.
func checkDials(s *account.Snapshot) error {
	n := len(s.Users) + len(s.SDGs) + len(s.Numbers)
	for _, u := range s.Users {
		n += len(u.Numbers)
	}
	seen := make(map[string]Target, n)
	add := func(dial string, t Target) error {
		if dial == "" {
			return nil
		}
		if prev, ok := seen[dial]; ok {
			return fmt.Errorf("dial string %q reaches both %s %q and %s %q", dial, prev.Kind, prev.ID, t.Kind, t.ID)
		}
		seen[dial] = t
		return nil
	}
	for _, u := range s.Users {
		t := Target{Kind: TargetUser, ID: u.ID}
		if err := add(u.Extension, t); err != nil {
			return err
		}
		for _, num := range u.Numbers {
			if err := add(num, t); err != nil {
				return err
			}
		}
	}
	for _, g := range s.SDGs {
		if err := add(g.Extension, Target{Kind: TargetSDG, ID: g.ID}); err != nil {
			return err
		}
	}
	for _, num := range s.Numbers {
		if err := add(num.Number, Target{Kind: TargetNumber, ID: num.Number}); err != nil {
			return err
		}
	}
	return nil
}

// configWriter inserts a snapshot's rows. The first error sticks; later calls
// do nothing.
type configWriter struct {
	tx  *Tx
	err error
}

// batchRows is how many rows one INSERT carries. Row by row, the
// database/sql and cgo round trip of each statement is most of the cost of
// replacing a 10,000-user account; batching roughly halves it.
const batchRows = 100

// inserter adds rows to one table with multi-row INSERTs: a prepared
// statement for full batches, a one-off statement for the rest at flush.
type inserter struct {
	w     *configWriter
	table string
	head  string // INSERT INTO table (columns) VALUES
	tuple string // (?, ?, ...)
	cols  int
	full  *sql.Stmt
	args  []any
}

func (w *configWriter) inserter(table string, cols ...string) *inserter {
	return &inserter{
		w:     w,
		table: table,
		head:  "INSERT INTO " + table + " (" + strings.Join(cols, ", ") + ") VALUES ",
		tuple: "(" + strings.TrimSuffix(strings.Repeat("?, ", len(cols)), ", ") + ")",
		cols:  len(cols),
		args:  make([]any, 0, batchRows*len(cols)),
	}
}

func (in *inserter) query(rows int) string {
	return in.head + strings.TrimSuffix(strings.Repeat(in.tuple+", ", rows), ", ")
}

// add queues one row; values are in the order of the inserter's columns.
func (in *inserter) add(values ...any) {
	w := in.w
	if w.err != nil {
		return
	}
	if len(values) != in.cols {
		w.err = fmt.Errorf("insert into %s: %d values for %d columns", in.table, len(values), in.cols)
		return
	}
	in.args = append(in.args, values...)
	if len(in.args) < batchRows*in.cols {
		return
	}
	if in.full == nil {
		st, err := w.tx.tx.PrepareContext(w.tx.ctx, in.query(batchRows))
		if err != nil {
			w.err = fmt.Errorf("insert into %s: prepare: %w", in.table, err)
			return
		}
		in.full = st
	}
	if _, err := in.full.ExecContext(w.tx.ctx, in.args...); err != nil {
		w.err = fmt.Errorf("insert into %s: %w", in.table, err)
	}
	in.args = in.args[:0]
}

// flush inserts the rows still queued and releases the statement.
func (in *inserter) flush() {
	w := in.w
	if in.full != nil {
		defer in.full.Close()
	}
	if w.err != nil || len(in.args) == 0 {
		return
	}
	if _, err := w.tx.tx.ExecContext(w.tx.ctx, in.query(len(in.args)/in.cols), in.args...); err != nil {
		w.err = fmt.Errorf("insert into %s: %w", in.table, err)
	}
	in.args = in.args[:0]
}

// routeJSON is a route in its canonical JSON form and its type ("" for none).
func routeJSON(r *account.Route) (body, typ string, err error) {
	b, err := json.Marshal(r)
	if err != nil {
		return "", "", err
	}
	if r != nil {
		typ = r.Type
	}
	return string(b), typ, nil
}

func (w *configWriter) header(s *account.Snapshot, raw []byte) {
	w.account(s.Account)
	doc := w.inserter("snapshot_doc", "slot", "revision", "body")
	doc.add(1, s.Revision, raw)
	doc.flush()
	if w.err == nil {
		if err := w.tx.setMeta(metaRevision, s.Revision); err != nil {
			w.err = fmt.Errorf("set revision: %w", err)
		}
	}
	nulls := w.inserter("null_lists", "name")
	for _, l := range []struct {
		name   string
		isNull bool
	}{
		{nullSites, s.Sites == nil},
		{nullUsers, s.Users == nil},
		{nullSDGs, s.SDGs == nil},
		{nullNumbers, s.Numbers == nil},
		{nullTrunks, s.Trunks == nil},
		{nullAdmins, s.Admins == nil},
	} {
		if l.isNull {
			nulls.add(l.name)
		}
	}
	nulls.flush()
}

func (w *configWriter) account(a account.Account) {
	acct := w.inserter("account", "slot", "id", "name", "sip_realm")
	acct.add(1, a.ID, a.Name, a.SIPRealm)
	acct.flush()
}

// rowWriter writes one collection's objects (and their child rows), each
// at its ord.
type rowWriter[T any] struct {
	add   func(ord int, v T)
	flush func()
}

// writeAll writes a whole collection in its order.
func writeAll[T any](rw rowWriter[T], list []T) {
	for i, v := range list {
		rw.add(i, v)
	}
	rw.flush()
}

func (w *configWriter) sites() rowWriter[account.Site] {
	rows := w.inserter("sites", "ord", "id", "name", "country", "timezone", "area_code", "main_number",
		"emergency_numbers_null", "elin_pool_null", "street", "city", "region", "postal_code", "address_country",
		"outbound")
	emergency := w.inserter("site_emergency_numbers", "site_id", "ord", "number")
	elins := w.inserter("site_elins", "site_id", "ord", "elin")
	return rowWriter[account.Site]{
		add: func(ord int, s account.Site) {
			e := s.Emergency
			a := e.Address
			var outbound any // NULL: no policy of its own
			if s.Outbound != nil {
				b, err := json.Marshal(s.Outbound)
				if err != nil && w.err == nil {
					w.err = fmt.Errorf("site %q outbound: %w", s.ID, err)
				}
				outbound = string(b)
			}
			rows.add(ord, s.ID, s.Name, s.Country, s.Timezone, s.AreaCode, s.MainNumber,
				e.Numbers == nil, e.ELINPool == nil, a.Street, a.City, a.Region, a.PostalCode, a.Country, outbound)
			for j, n := range e.Numbers {
				emergency.add(s.ID, j, n)
			}
			for j, n := range e.ELINPool {
				elins.add(s.ID, j, n)
			}
		},
		flush: func() { rows.flush(); emergency.flush(); elins.flush() },
	}
}

func (w *configWriter) users() rowWriter[account.User] {
	rows := w.inserter("users", "ord", "id", "site", "name", "email", "extension", "numbers_null",
		"sip_username", "ha1_md5", "ha1_sha256", "priority", "voicemail")
	nums := w.inserter("user_numbers", "user_id", "ord", "number")
	return rowWriter[account.User]{
		add: func(ord int, u account.User) {
			var voicemail any // NULL: the defaults
			if u.Voicemail != nil {
				b, err := json.Marshal(u.Voicemail)
				if err != nil && w.err == nil {
					w.err = fmt.Errorf("user %q voicemail: %w", u.ID, err)
				}
				voicemail = string(b)
			}
			rows.add(ord, u.ID, u.Site, u.Name, u.Email, u.Extension, u.Numbers == nil,
				u.SIP.Username, u.SIP.HA1MD5, u.SIP.HA1SHA256, u.Priority, voicemail)
			for j, n := range u.Numbers {
				nums.add(u.ID, j, n)
			}
		},
		flush: func() { rows.flush(); nums.flush() },
	}
}

func (w *configWriter) sdgs() rowWriter[account.SDG] {
	rows := w.inserter("sdgs", "ord", "id", "site", "name", "extension", "route_type", "route")
	return rowWriter[account.SDG]{
		add: func(ord int, g account.SDG) {
			body, typ, err := routeJSON(g.Route)
			if err != nil && w.err == nil {
				w.err = fmt.Errorf("sdg %q route: %w", g.ID, err)
			}
			rows.add(ord, g.ID, g.Site, g.Name, g.Extension, typ, body)
		},
		flush: rows.flush,
	}
}

func (w *configWriter) numbers() rowWriter[account.Number] {
	rows := w.inserter("numbers", "ord", "number", "site", "route_type", "route")
	return rowWriter[account.Number]{
		add: func(ord int, n account.Number) {
			body, typ, err := routeJSON(n.Route)
			if err != nil && w.err == nil {
				w.err = fmt.Errorf("number %q route: %w", n.Number, err)
			}
			rows.add(ord, n.Number, n.Site, typ, body)
		},
		flush: rows.flush,
	}
}

func (w *configWriter) trunks() rowWriter[account.Trunk] {
	rows := w.inserter("trunks", "ord", "id", "site", "name", "host", "port", "transport", "priority",
		"weight", "options_interval_s", "max_channels", "codecs", "srtp")
	return rowWriter[account.Trunk]{
		add: func(ord int, t account.Trunk) {
			codecs, err := json.Marshal(t.Codecs)
			if err != nil && w.err == nil {
				w.err = fmt.Errorf("trunk %q codecs: %w", t.ID, err)
			}
			rows.add(ord, t.ID, t.Site, t.Name, t.Host, t.Port, t.Transport, t.Priority,
				t.Weight, t.OptionsIntervalS, t.MaxChannels, string(codecs), t.SRTP)
		},
		flush: rows.flush,
	}
}

func (w *configWriter) admins() rowWriter[account.Admin] {
	rows := w.inserter("admins", "ord", "username", "role", "bcrypt")
	return rowWriter[account.Admin]{
		add:   func(ord int, a account.Admin) { rows.add(ord, a.Username, a.Role, a.Bcrypt) },
		flush: rows.flush,
	}
}

func (w *configWriter) prompts() rowWriter[account.Prompt] {
	rows := w.inserter("prompts", "ord", "name", "blob", "sha256")
	return rowWriter[account.Prompt]{
		add:   func(ord int, p account.Prompt) { rows.add(ord, p.Name, p.Blob, p.SHA256) },
		flush: rows.flush,
	}
}

// callout writes the callout singleton, its caller IDs and whether they
// were null.
func (w *configWriter) callout(c account.Callout) {
	row := w.inserter("callout", "slot", "greeting_prompt", "require_press_1")
	row.add(1, c.GreetingPrompt, c.RequirePress1)
	row.flush()
	ids := w.inserter("callout_caller_ids", "ord", "country", "number", "dedicated")
	for i, id := range c.CallerIDs {
		ids.add(i, id.Country, id.Number, id.Dedicated)
	}
	ids.flush()
	w.nullList(nullCallerIDs, c.CallerIDs == nil)
}

// embed writes the embed singleton's origins and whether they were null.
func (w *configWriter) embed(e account.Embed) {
	rows := w.inserter("embed_origins", "ord", "origin")
	for i, o := range e.AllowedOrigins {
		rows.add(i, o)
	}
	rows.flush()
	w.nullList(nullAllowedOrigins, e.AllowedOrigins == nil)
}

// nullList records in null_lists that the list name was null.
func (w *configWriter) nullList(name string, isNull bool) {
	if !isNull {
		return
	}
	row := w.inserter("null_lists", "name")
	row.add(name)
	row.flush()
}

// dialIndex fills dial_index from the tables just written, inside SQLite:
// no row crosses into Go. buildDialIndex has already refused duplicates.
func (w *configWriter) dialIndex() {
	if w.err != nil {
		return
	}
	_, err := w.tx.tx.ExecContext(w.tx.ctx, `INSERT INTO dial_index (dial, kind, target_id, site)
		SELECT extension, 'user', id, site FROM users WHERE extension != ''
		UNION ALL
		SELECT n.number, 'user', u.id, u.site FROM user_numbers n JOIN users u ON u.id = n.user_id WHERE n.number != ''
		UNION ALL
		SELECT extension, 'sdg', id, site FROM sdgs WHERE extension != ''
		UNION ALL
		SELECT number, 'number', number, site FROM numbers WHERE number != ''
		ORDER BY 1`)
	if err != nil {
		w.err = fmt.Errorf("fill dial index: %w", err)
	}
}
