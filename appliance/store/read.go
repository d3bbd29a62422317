package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/outpost-voice/outpost/account"
)

// Reader answers queries over the config and presence planes through
// read-only connections. It is safe for concurrent use; a method that needs
// several queries runs them in one read transaction, so it never mixes two
// revisions.
type Reader struct {
	db             *sql.DB
	userByUsername *sql.Stmt
	lookupDial     *sql.Stmt
	bindingsByAOR  *sql.Stmt
}

// Kinds of Target.
const (
	TargetUser   = "user"
	TargetSDG    = "sdg"
	TargetNumber = "number"
)

// Target is what a dialled extension or account number reaches. For a
// numbers[] entry, ID is the number itself.
type Target struct {
	Kind string // TargetUser, TargetSDG or TargetNumber
	ID   string
	Site string
}

// Counts sizes the applied configuration. Numbers counts users' DIDs plus
// numbers[] entries.
type Counts struct {
	Sites, Users, SDGs, Numbers, Trunks, Admins int
}

// userQuery reads users with their DIDs as a JSON array, one row per user.
// (A LEFT JOIN of user_numbers measured twice as slow for the registrar's
// per-REGISTER lookup.)
const userQuery = `SELECT u.id, u.site, u.name, u.email, u.extension, u.numbers_null,
	u.sip_username, u.ha1_md5, u.ha1_sha256, u.priority, u.voicemail,
	(SELECT json_group_array(n.number ORDER BY n.ord) FROM user_numbers n WHERE n.user_id = u.id)
	FROM users u`

const usersQuery = userQuery + ` ORDER BY u.ord`

const userByUsernameQuery = userQuery + ` WHERE u.sip_username = ?`

const userByIDQuery = userQuery + ` WHERE u.id = ?`

func newReader(ctx context.Context, db *sql.DB) (*Reader, error) {
	r := &Reader{db: db}
	var err error
	if r.userByUsername, err = db.PrepareContext(ctx, userByUsernameQuery); err != nil {
		return nil, fmt.Errorf("prepare user query: %w", err)
	}
	if r.lookupDial, err = db.PrepareContext(ctx,
		`SELECT kind, target_id, site FROM dial_index WHERE dial = ?`); err != nil {
		r.userByUsername.Close()
		return nil, fmt.Errorf("prepare dial query: %w", err)
	}
	if r.bindingsByAOR, err = db.PrepareContext(ctx, bindingsByAORSQL); err != nil {
		r.userByUsername.Close()
		r.lookupDial.Close()
		return nil, fmt.Errorf("prepare bindings query: %w", err)
	}
	return r, nil
}

func (r *Reader) close() error {
	return errors.Join(r.userByUsername.Close(), r.lookupDial.Close(), r.bindingsByAOR.Close(), r.db.Close())
}

// view runs fn in one read transaction: every query in it sees the same
// committed state.
func (r *Reader) view(ctx context.Context, fn func(q querier) error) error {
	tx, err := r.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	return fn(tx)
}

// Revision is the applied config revision, 0 when none.
func (r *Reader) Revision(ctx context.Context) (int64, error) {
	n, err := metaInt(ctx, r.db, metaRevision)
	if err != nil {
		return 0, fmt.Errorf("read revision: %w", err)
	}
	return n, nil
}

// SnapshotJSON is the applied snapshot's canonical document: as stored
// when the revision came whole (ReplaceConfig), else built from the tables
// (after ApplyChanges). nil, nil when none has been applied.
func (r *Reader) SnapshotJSON(ctx context.Context) ([]byte, error) {
	var body []byte
	err := r.db.QueryRowContext(ctx, `SELECT body FROM snapshot_doc WHERE slot = 1`).Scan(&body)
	switch {
	case err == nil:
		return body, nil
	case !errors.Is(err, sql.ErrNoRows):
		return nil, fmt.Errorf("read snapshot document: %w", err)
	}
	snap, err := r.Snapshot(ctx)
	if err != nil || snap == nil {
		return nil, err
	}
	if body, err = snap.Encode(); err != nil {
		return nil, fmt.Errorf("encode snapshot document: %w", err)
	}
	return body, nil
}

// Snapshot reassembles the applied snapshot from the tables; it equals what
// account.DecodeBytes gives for the stored canonical document. nil, nil when
// none has been applied.
func (r *Reader) Snapshot(ctx context.Context) (*account.Snapshot, error) {
	var snap *account.Snapshot
	err := r.view(ctx, func(q querier) error {
		var err error
		snap, err = readConfig(ctx, q)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("read snapshot: %w", err)
	}
	return snap, nil
}

// readList runs one top-level list reader in a read transaction and gives
// back nil where the snapshot had null, as Snapshot does.
func readList[T any](ctx context.Context, r *Reader, what, null string, read func(context.Context, querier) ([]T, error)) ([]T, error) {
	var list []T
	err := r.view(ctx, func(q querier) error {
		var err error
		if list, err = read(ctx, q); err != nil {
			return err
		}
		nulls, err := readNullLists(ctx, q)
		list = orNil(list, nulls[null])
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", what, err)
	}
	return list, nil
}

// Account is the tenant; the zero Account when no snapshot is applied.
func (r *Reader) Account(ctx context.Context) (account.Account, error) {
	a, _, err := readAccount(ctx, r.db)
	if err != nil {
		return account.Account{}, fmt.Errorf("read account: %w", err)
	}
	return a, nil
}

// Sites lists the sites in snapshot order.
func (r *Reader) Sites(ctx context.Context) ([]account.Site, error) {
	return readList(ctx, r, "sites", nullSites, func(ctx context.Context, q querier) ([]account.Site, error) {
		return readSites(ctx, q, "")
	})
}

// Site is the site with this id, or an error wrapping ErrNotFound.
func (r *Reader) Site(ctx context.Context, id string) (account.Site, error) {
	if id == "" {
		return account.Site{}, fmt.Errorf("site %q: %w", id, ErrNotFound)
	}
	var sites []account.Site
	err := r.view(ctx, func(q querier) error {
		var err error
		sites, err = readSites(ctx, q, id)
		return err
	})
	if err != nil {
		return account.Site{}, fmt.Errorf("read site %q: %w", id, err)
	}
	if len(sites) == 0 {
		return account.Site{}, fmt.Errorf("site %q: %w", id, ErrNotFound)
	}
	return sites[0], nil
}

// Users lists the users in snapshot order.
func (r *Reader) Users(ctx context.Context) ([]account.User, error) {
	return readList(ctx, r, "users", nullUsers, readUsers)
}

// UserByUsername is the user whose SIP username this is, or an error
// wrapping ErrNotFound.
func (r *Reader) UserByUsername(ctx context.Context, username string) (account.User, error) {
	return r.oneUser(ctx, r.userByUsername, username)
}

// UserByID finds a user by id (what LookupDial's Target names); ErrNotFound
// when there is none.
func (r *Reader) UserByID(ctx context.Context, id string) (account.User, error) {
	return r.oneUser(ctx, nil, id)
}

func (r *Reader) oneUser(ctx context.Context, stmt *sql.Stmt, key string) (account.User, error) {
	var rows *sql.Rows
	var err error
	if stmt != nil {
		rows, err = stmt.QueryContext(ctx, key)
	} else {
		rows, err = r.db.QueryContext(ctx, userByIDQuery, key)
	}
	if err != nil {
		return account.User{}, fmt.Errorf("read user %q: %w", key, err)
	}
	users, err := scanUsers(rows)
	if err != nil {
		return account.User{}, fmt.Errorf("read user %q: %w", key, err)
	}
	if len(users) == 0 {
		return account.User{}, fmt.Errorf("user %q: %w", key, ErrNotFound)
	}
	return users[0], nil
}

// SDGs lists the Survivability Distribution Groups in snapshot order.
func (r *Reader) SDGs(ctx context.Context) ([]account.SDG, error) {
	return readList(ctx, r, "sdgs", nullSDGs, readSDGs)
}

// Numbers lists the snapshot's numbers[] entries in order (users' DIDs are
// in their User).
func (r *Reader) Numbers(ctx context.Context) ([]account.Number, error) {
	return readList(ctx, r, "numbers", nullNumbers, readNumbers)
}

// Trunks lists the trunks in snapshot order.
func (r *Reader) Trunks(ctx context.Context) ([]account.Trunk, error) {
	return readList(ctx, r, "trunks", nullTrunks, readTrunks)
}

// Callout is the call-out configuration; zero when no snapshot is applied.
func (r *Reader) Callout(ctx context.Context) (account.Callout, error) {
	var c account.Callout
	err := r.view(ctx, func(q querier) error {
		nulls, err := readNullLists(ctx, q)
		if err != nil {
			return err
		}
		c, err = readCallout(ctx, q, nulls)
		return err
	})
	if err != nil {
		return account.Callout{}, fmt.Errorf("read callout: %w", err)
	}
	return c, nil
}

// Admins lists the local web UI logins in snapshot order.
func (r *Reader) Admins(ctx context.Context) ([]account.Admin, error) {
	return readList(ctx, r, "admins", nullAdmins, readAdmins)
}

// Prompts lists the account's custom prompts in snapshot order (nil when
// the snapshot has none).
func (r *Reader) Prompts(ctx context.Context) ([]account.Prompt, error) {
	prompts, err := readPrompts(ctx, r.db)
	if err != nil {
		return nil, fmt.Errorf("read prompts: %w", err)
	}
	return prompts, nil
}

// Embed is the call widget configuration.
func (r *Reader) Embed(ctx context.Context) (account.Embed, error) {
	var e account.Embed
	err := r.view(ctx, func(q querier) error {
		nulls, err := readNullLists(ctx, q)
		if err != nil {
			return err
		}
		e, err = readEmbed(ctx, q, nulls)
		return err
	})
	if err != nil {
		return account.Embed{}, fmt.Errorf("read embed: %w", err)
	}
	return e, nil
}

// LookupDial says what a dialled extension or account number (exactly as
// stored, e.g. "1001" or "+16505550101") reaches, or returns an error
// wrapping ErrNotFound. Completing short numbers is the dial plan's job.
func (r *Reader) LookupDial(ctx context.Context, dial string) (Target, error) {
	var t Target
	err := r.lookupDial.QueryRowContext(ctx, dial).Scan(&t.Kind, &t.ID, &t.Site)
	if errors.Is(err, sql.ErrNoRows) {
		return Target{}, fmt.Errorf("dial %q: %w", dial, ErrNotFound)
	}
	if err != nil {
		return Target{}, fmt.Errorf("look up dial %q: %w", dial, err)
	}
	return t, nil
}

// Counts sizes the applied configuration.
func (r *Reader) Counts(ctx context.Context) (Counts, error) {
	var c Counts
	err := r.db.QueryRowContext(ctx, `SELECT
		(SELECT count(*) FROM sites),
		(SELECT count(*) FROM users),
		(SELECT count(*) FROM sdgs),
		(SELECT count(*) FROM user_numbers) + (SELECT count(*) FROM numbers),
		(SELECT count(*) FROM trunks),
		(SELECT count(*) FROM admins)`).Scan(&c.Sites, &c.Users, &c.SDGs, &c.Numbers, &c.Trunks, &c.Admins)
	if err != nil {
		return Counts{}, fmt.Errorf("count config: %w", err)
	}
	return c, nil
}

// Members lists the recorded cluster members sorted by ID.
func (r *Reader) Members(ctx context.Context) ([]Member, error) {
	rows, err := r.db.QueryContext(ctx,
		`SELECT id, raft_addr, http_addr, sip_addr, site, updated_at FROM members ORDER BY id`)
	if err != nil {
		return nil, fmt.Errorf("read members: %w", err)
	}
	defer rows.Close()
	var members []Member
	for rows.Next() {
		var m Member
		var updated string
		if err := rows.Scan(&m.ID, &m.RaftAddr, &m.HTTPAddr, &m.SIPAddr, &m.Site, &updated); err != nil {
			return nil, fmt.Errorf("read members: %w", err)
		}
		if m.UpdatedAt, err = parseTime(updated); err != nil {
			return nil, fmt.Errorf("read member %s: %w", m.ID, err)
		}
		members = append(members, m)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read members: %w", err)
	}
	return members, nil
}

// Mode is the replicated node mode and when it was entered: "normal" and the
// zero time when it was never set.
func (r *Reader) Mode(ctx context.Context) (mode string, since time.Time, err error) {
	rows, err := r.db.QueryContext(ctx, `SELECT key, value FROM meta WHERE key IN (?, ?)`, metaMode, metaModeSince)
	if err != nil {
		return "", time.Time{}, fmt.Errorf("read mode: %w", err)
	}
	defer rows.Close()
	mode = ModeNormal
	for rows.Next() {
		var key, value string
		if err := rows.Scan(&key, &value); err != nil {
			return "", time.Time{}, fmt.Errorf("read mode: %w", err)
		}
		switch key {
		case metaMode:
			mode = value
		case metaModeSince:
			if since, err = parseTime(value); err != nil {
				return "", time.Time{}, fmt.Errorf("read mode: %w", err)
			}
		}
	}
	if err := rows.Err(); err != nil {
		return "", time.Time{}, fmt.Errorf("read mode: %w", err)
	}
	return mode, since, nil
}
