package store

import (
	"database/sql"
	"errors"
	"fmt"

	"github.com/mattn/go-sqlite3"

	"github.com/outpost-voice/outpost/account"
)

// ApplyChanges applies changes (one or more revisions' worth, decoded from
// the sync protocol's ops) to the config tables, object by object, and sets
// the revision to rev. The tables end as ReplaceConfig would leave them for
// the snapshot the changes make (account.Snapshot.WithChanges), but only
// the objects changed are written: an edit of one user in a 10,000-user
// account costs a few rows, not the account.
//
// The stored document is dropped rather than rewritten (rewriting it would
// cost the whole document again): SnapshotJSON then builds it from the
// tables. It is atomic on its own; like ReplaceConfig it checks only what
// the tables need (a key, a username, a number or a dial string reaching
// two things is ErrConflict; a change that does not fit, such as a delete
// of what is not there, wraps account.ErrBadChange) and leaves validation
// to account.Validate.
func (tx *Tx) ApplyChanges(rev int64, changes []account.Change) error {
	err := tx.Savepoint(func() error {
		if _, err := tx.tx.ExecContext(tx.ctx, `DELETE FROM snapshot_doc`); err != nil {
			return fmt.Errorf("drop the stored document: %w", err)
		}
		if err := tx.setMeta(metaRevision, rev); err != nil {
			return fmt.Errorf("set revision: %w", err)
		}
		for i, c := range changes {
			if err := tx.applyChange(c); err != nil {
				return fmt.Errorf("change %d (%s %q): %w", i, c.Kind, c.ID, err)
			}
		}
		return nil
	})
	var serr sqlite3.Error
	if errors.As(err, &serr) && serr.Code == sqlite3.ErrConstraint {
		return fmt.Errorf("apply changes for revision %d: %w: %w", rev, ErrConflict, err)
	}
	if err != nil {
		return fmt.Errorf("apply changes for revision %d: %w", rev, err)
	}
	return nil
}

// changeSQL are the statements that take one object out of the tables, by
// kind: its dial strings first (while its rows still say which they are),
// then its rows. Each takes the object's key as ?1.
var changeSQL = map[string][]string{
	account.KindSites: {
		`DELETE FROM sites WHERE id = ?1`,
		`DELETE FROM site_emergency_numbers WHERE site_id = ?1`,
		`DELETE FROM site_elins WHERE site_id = ?1`,
	},
	account.KindUsers: {
		`DELETE FROM dial_index WHERE kind = 'user' AND target_id = ?1 AND dial IN
			(SELECT extension FROM users WHERE id = ?1 UNION ALL SELECT number FROM user_numbers WHERE user_id = ?1)`,
		`DELETE FROM users WHERE id = ?1`,
		`DELETE FROM user_numbers WHERE user_id = ?1`,
	},
	account.KindSDGs: {
		`DELETE FROM dial_index WHERE kind = 'sdg' AND target_id = ?1 AND dial IN (SELECT extension FROM sdgs WHERE id = ?1)`,
		`DELETE FROM sdgs WHERE id = ?1`,
	},
	account.KindNumbers: {
		`DELETE FROM dial_index WHERE kind = 'number' AND dial = ?1`,
		`DELETE FROM numbers WHERE number = ?1`,
	},
	account.KindTrunks:  {`DELETE FROM trunks WHERE id = ?1`},
	account.KindAdmins:  {`DELETE FROM admins WHERE username = ?1`},
	account.KindPrompts: {`DELETE FROM prompts WHERE name = ?1`},
}

// changeTables names, by kind, the table holding a collection's objects,
// its key column and its null_lists name ("" for a list that is never
// null: prompts, which the snapshot has as nil when there are none).
var changeTables = map[string]struct{ table, key, null string }{
	account.KindSites:   {"sites", "id", nullSites},
	account.KindUsers:   {"users", "id", nullUsers},
	account.KindSDGs:    {"sdgs", "id", nullSDGs},
	account.KindNumbers: {"numbers", "number", nullNumbers},
	account.KindTrunks:  {"trunks", "id", nullTrunks},
	account.KindAdmins:  {"admins", "username", nullAdmins},
	account.KindPrompts: {"prompts", "name", ""}, // none is nil, never null or empty
}

func (tx *Tx) applyChange(c account.Change) error {
	w := &configWriter{tx: tx}
	switch c.Kind {
	case account.KindAccount:
		v, ok := c.Value.(account.Account)
		if !ok || c.Delete {
			return fmt.Errorf("%w: want an account to set, not %T", account.ErrBadChange, c.Value)
		}
		if err := tx.execAll(`DELETE FROM account`); err != nil {
			return err
		}
		w.account(v)
		return w.err
	case account.KindCallout:
		v, ok := c.Value.(account.Callout)
		if !ok || c.Delete {
			return fmt.Errorf("%w: want a callout to set, not %T", account.ErrBadChange, c.Value)
		}
		if err := tx.execAll(`DELETE FROM callout`, `DELETE FROM callout_caller_ids`, `DELETE FROM null_lists WHERE name = '`+nullCallerIDs+`'`); err != nil {
			return err
		}
		w.callout(v)
		return w.err
	case account.KindEmbed:
		v, ok := c.Value.(account.Embed)
		if !ok || c.Delete {
			return fmt.Errorf("%w: want an embed to set, not %T", account.ErrBadChange, c.Value)
		}
		if err := tx.execAll(`DELETE FROM embed_origins`, `DELETE FROM null_lists WHERE name = '`+nullAllowedOrigins+`'`); err != nil {
			return err
		}
		w.embed(v)
		return w.err
	}
	t, ok := changeTables[c.Kind]
	switch {
	case !ok:
		return fmt.Errorf("%w: unknown kind %q", account.ErrBadChange, c.Kind)
	case c.ID == "":
		return fmt.Errorf("%w: no key", account.ErrBadChange)
	case !c.Delete && kindOf(c.Value) != c.Kind:
		return fmt.Errorf("%w: a %s put wants its object, not %T", account.ErrBadChange, c.Kind, c.Value)
	}
	// A replaced object keeps its place; a new one goes last.
	var ord int64
	err := tx.tx.QueryRowContext(tx.ctx, `SELECT ord FROM `+t.table+` WHERE `+t.key+` = ?`, c.ID).Scan(&ord)
	found := err == nil
	switch {
	case errors.Is(err, sql.ErrNoRows) && c.Delete:
		return fmt.Errorf("%w: no %s %q to delete", account.ErrBadChange, c.Kind, c.ID)
	case errors.Is(err, sql.ErrNoRows):
		err = tx.tx.QueryRowContext(tx.ctx, `SELECT coalesce(max(ord) + 1, 0) FROM `+t.table).Scan(&ord)
	}
	if err != nil {
		return fmt.Errorf("find %s %q: %w", c.Kind, c.ID, err)
	}
	if found {
		for _, q := range changeSQL[c.Kind] {
			if _, err := tx.tx.ExecContext(tx.ctx, q, c.ID); err != nil {
				return fmt.Errorf("remove %s %q: %w", c.Kind, c.ID, err)
			}
		}
	}
	if c.Delete {
		return nil
	}
	if t.null != "" {
		if err := tx.execAll(`DELETE FROM null_lists WHERE name = '` + t.null + `'`); err != nil {
			return err
		}
	}
	switch v := c.Value.(type) {
	case account.Site:
		putOne(w.sites(), int(ord), v)
	case account.User:
		putOne(w.users(), int(ord), v)
		dials := w.inserter("dial_index", "dial", "kind", "target_id", "site")
		if v.Extension != "" {
			dials.add(v.Extension, TargetUser, v.ID, v.Site)
		}
		for _, n := range v.Numbers {
			if n != "" {
				dials.add(n, TargetUser, v.ID, v.Site)
			}
		}
		dials.flush()
	case account.SDG:
		putOne(w.sdgs(), int(ord), v)
		if v.Extension != "" {
			dials := w.inserter("dial_index", "dial", "kind", "target_id", "site")
			dials.add(v.Extension, TargetSDG, v.ID, v.Site)
			dials.flush()
		}
	case account.Number:
		putOne(w.numbers(), int(ord), v)
		dials := w.inserter("dial_index", "dial", "kind", "target_id", "site")
		dials.add(v.Number, TargetNumber, v.Number, v.Site)
		dials.flush()
	case account.Trunk:
		putOne(w.trunks(), int(ord), v)
	case account.Admin:
		putOne(w.admins(), int(ord), v)
	case account.Prompt:
		putOne(w.prompts(), int(ord), v)
	}
	return w.err
}

// kindOf is the collection a put's value belongs in ("" for none).
func kindOf(v any) string {
	switch v.(type) {
	case account.Site:
		return account.KindSites
	case account.User:
		return account.KindUsers
	case account.SDG:
		return account.KindSDGs
	case account.Number:
		return account.KindNumbers
	case account.Trunk:
		return account.KindTrunks
	case account.Admin:
		return account.KindAdmins
	case account.Prompt:
		return account.KindPrompts
	}
	return ""
}

func putOne[T any](rw rowWriter[T], ord int, v T) {
	rw.add(ord, v)
	rw.flush()
}

// exec runs statements that take no arguments, in order.
func (tx *Tx) execAll(queries ...string) error {
	for _, q := range queries {
		if _, err := tx.tx.ExecContext(tx.ctx, q); err != nil {
			return fmt.Errorf("%s: %w", q, err)
		}
	}
	return nil
}
