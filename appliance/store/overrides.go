package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/outpost-voice/outpost/account"
)

// ErrInvalidOverride marks an SDG override the store will not keep: no
// SDG id, author or time, or a route that does not validate against the
// configuration in force (the error then wraps *account.ValidationError).
var ErrInvalidOverride = errors.New("invalid sdg override")

// ErrUnknownSDG marks an override of an SDG the configuration in force
// does not define.
var ErrUnknownSDG = errors.New("unknown sdg")

// SDGOverride is an emergency override of an SDG's route (issue 7): while
// it holds, calls to SDGID walk Route instead of the snapshot's route. By
// is who made it, At when (stamped by the proposer), Revision the config
// revision in force then. It is replicated (set_sdg_override); a nil
// Route in a command clears the SDG's override. A newer config revision
// that changes or removes the SDG supersedes it (SupersedeSDGOverrides).
type SDGOverride struct {
	SDGID    string         `json:"sdg_id"`
	Route    *account.Route `json:"route"`
	By       string         `json:"by"`
	At       time.Time      `json:"at"`
	Revision int64          `json:"revision"`
}

const (
	upsertOverrideSQL = `INSERT INTO sdg_overrides (sdg_id, route, "by", at_ms, revision) VALUES (?, ?, ?, ?, ?)
	ON CONFLICT (sdg_id) DO UPDATE SET route = excluded.route, "by" = excluded."by", at_ms = excluded.at_ms, revision = excluded.revision`
	deleteOverrideSQL = `DELETE FROM sdg_overrides WHERE sdg_id = ?`
	overrideColumns   = `sdg_id, route, "by", at_ms, revision`
)

func init() {
	// Prepared on the writer at Open with the rest (see prepareWrites).
	preparedWrites = append(preparedWrites, upsertOverrideSQL, deleteOverrideSQL)
}

// CheckSDGOverride says whether o may be set on snap, the configuration in
// force, with others (the overrides already in force; one of o's SDG is
// replaced by o) applied too: o needs an SDG id, an author and a time; a
// route (nil: a clear, always allowed) needs an SDG snap defines
// (ErrUnknownSDG) and must pass account.Validate once every override
// replaces its SDG's route, so its references and loops are checked by
// the same rules as the snapshot's (else ErrInvalidOverride wrapping the
// *account.ValidationError). The API runs it before proposing; the FSM
// runs it again on the state the command lands on.
func CheckSDGOverride(snap *account.Snapshot, others []SDGOverride, o SDGOverride) error {
	if o.SDGID == "" || o.By == "" || o.At.IsZero() {
		return fmt.Errorf("%w: sdg %q, by %q at %s: needs an sdg id, an author and a time",
			ErrInvalidOverride, o.SDGID, o.By, formatTime(o.At))
	}
	if o.Route == nil {
		return nil
	}
	if snap == nil || !slices.ContainsFunc(snap.SDGs, func(g account.SDG) bool { return g.ID == o.SDGID }) {
		return fmt.Errorf("%w: %q is not an SDG of the configuration in force", ErrUnknownSDG, o.SDGID)
	}
	all := slices.DeleteFunc(slices.Clone(others), func(x SDGOverride) bool { return x.SDGID == o.SDGID })
	trial := *snap
	trial.SDGs = withOverrides(snap.SDGs, append(all, o))
	trial.Revision = snap.Revision + 1
	if err := account.Validate(&trial, snap.Revision); err != nil {
		return fmt.Errorf("%w: route of sdg %s: %w", ErrInvalidOverride, o.SDGID, err)
	}
	return nil
}

// withOverrides is a copy of sdgs with each overridden SDG's route
// replaced by its override's.
func withOverrides(sdgs []account.SDG, os []SDGOverride) []account.SDG {
	out := slices.Clone(sdgs)
	for _, o := range os {
		for i := range out {
			if out[i].ID == o.SDGID && o.Route != nil {
				out[i].Route = o.Route
			}
		}
	}
	return out
}

// SetSDGOverride sets o (o.Route nil: clears o.SDGID's override) after
// checking it against the configuration and overrides in force in this
// transaction (CheckSDGOverride). Only the FSM calls it; a refusal
// (ErrInvalidOverride, ErrUnknownSDG) writes nothing. o.Revision is
// stored as given: the FSM checks it is the revision in force.
func (tx *Tx) SetSDGOverride(o SDGOverride) error {
	if o.Route == nil {
		if err := CheckSDGOverride(nil, nil, o); err != nil {
			return err
		}
		if _, err := tx.exec(deleteOverrideSQL, o.SDGID); err != nil {
			return fmt.Errorf("clear override of sdg %s: %w", o.SDGID, err)
		}
		return nil
	}
	snap, err := readConfig(tx.ctx, tx.tx)
	if err != nil {
		return fmt.Errorf("set override of sdg %s: %w", o.SDGID, err)
	}
	others, err := queryOverrides(tx.ctx, tx.tx, `SELECT `+overrideColumns+` FROM sdg_overrides ORDER BY sdg_id`)
	if err != nil {
		return fmt.Errorf("set override of sdg %s: read overrides: %w", o.SDGID, err)
	}
	if err := CheckSDGOverride(snap, others, o); err != nil {
		return err
	}
	body, _, err := routeJSON(o.Route)
	if err != nil {
		return fmt.Errorf("set override of sdg %s: %w", o.SDGID, err)
	}
	if _, err := tx.exec(upsertOverrideSQL, o.SDGID, body, o.By, o.At.UnixMilli(), o.Revision); err != nil {
		return fmt.Errorf("set override of sdg %s: %w", o.SDGID, err)
	}
	return nil
}

// OverriddenSDGsChangedBy is the set of overridden SDGs that next changes
// (any field, the route included) or removes, compared with the
// configuration in force in this transaction: call it before
// ReplaceConfig, and pass the result to SupersedeSDGOverrides after. It
// reads nothing more when no SDG is overridden.
func (tx *Tx) OverriddenSDGsChangedBy(next *account.Snapshot) (map[string]bool, error) {
	os, err := queryOverrides(tx.ctx, tx.tx, `SELECT `+overrideColumns+` FROM sdg_overrides ORDER BY sdg_id`)
	if err != nil || len(os) == 0 {
		return nil, err
	}
	cur, err := readSDGs(tx.ctx, tx.tx)
	if err != nil {
		return nil, err
	}
	canon := func(list []account.SDG) map[string]string {
		m := make(map[string]string, len(list))
		for _, g := range list {
			b, _ := json.Marshal(g) // an SDG always encodes
			m[g.ID] = string(b)
		}
		return m
	}
	was, now := canon(cur), canon(next.SDGs)
	out := map[string]bool{}
	for _, o := range os {
		if n, ok := now[o.SDGID]; !ok || n != was[o.SDGID] {
			out[o.SDGID] = true
		}
	}
	return out, nil
}

// SDGsIn is the set of SDGs changes put or delete: those a revision made
// of them touches.
func SDGsIn(changes []account.Change) map[string]bool {
	out := map[string]bool{}
	for _, c := range changes {
		if c.Kind == account.KindSDGs {
			out[c.ID] = true
		}
	}
	return out
}

// SupersedeSDGOverrides applies the cloud's precedence after the config
// write of revision rev, in the same transaction: it drops the overrides
// made at an older revision whose SDG is in touched, then (in SDG id
// order) every remaining override whose route no longer validates with
// the ones kept before it (the revision removed a user or prompt it
// names, or made a loop). It returns the SDG ids dropped. Only the FSM
// calls it; only a store failure is an error.
func (tx *Tx) SupersedeSDGOverrides(rev int64, touched map[string]bool) ([]string, error) {
	os, err := queryOverrides(tx.ctx, tx.tx, `SELECT `+overrideColumns+` FROM sdg_overrides ORDER BY sdg_id`)
	if err != nil || len(os) == 0 {
		return nil, err
	}
	snap, err := readConfig(tx.ctx, tx.tx)
	if err != nil {
		return nil, fmt.Errorf("supersede sdg overrides: %w", err)
	}
	var dropped []string
	var kept []SDGOverride
	for _, o := range os {
		if o.Revision < rev && touched[o.SDGID] || CheckSDGOverride(snap, kept, o) != nil {
			if _, err := tx.exec(deleteOverrideSQL, o.SDGID); err != nil {
				return nil, fmt.Errorf("supersede override of sdg %s: %w", o.SDGID, err)
			}
			dropped = append(dropped, o.SDGID)
			continue
		}
		kept = append(kept, o)
	}
	return dropped, nil
}

// SDGOverrides is every SDG override in force, by SDG id.
func (r *Reader) SDGOverrides(ctx context.Context) ([]SDGOverride, error) {
	os, err := queryOverrides(ctx, r.db, `SELECT `+overrideColumns+` FROM sdg_overrides ORDER BY sdg_id`)
	if err != nil {
		return nil, fmt.Errorf("read sdg overrides: %w", err)
	}
	return os, nil
}

func queryOverrides(ctx context.Context, q querier, query string, args ...any) ([]SDGOverride, error) {
	rows, err := q.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []SDGOverride
	for rows.Next() {
		var o SDGOverride
		var route string
		var at int64
		if err := rows.Scan(&o.SDGID, &route, &o.By, &at, &o.Revision); err != nil {
			return nil, err
		}
		if o.Route, err = decodeRoute(route); err != nil {
			return nil, fmt.Errorf("override of sdg %s: route: %w", o.SDGID, err)
		}
		o.At = time.UnixMilli(at).UTC()
		out = append(out, o)
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	return out, nil
}

// readConfig assembles the configuration in force as q sees it (the
// FSM's transaction, or Reader.Snapshot's read transaction); nil when no
// snapshot has been applied.
func readConfig(ctx context.Context, q querier) (*account.Snapshot, error) {
	acct, found, err := readAccount(ctx, q)
	if err != nil || !found {
		return nil, err
	}
	s := &account.Snapshot{Account: acct}
	if s.Revision, err = metaInt(ctx, q, metaRevision); err != nil {
		return nil, err
	}
	nulls, err := readNullLists(ctx, q)
	if err != nil {
		return nil, err
	}
	if s.Sites, err = readSites(ctx, q, ""); err != nil {
		return nil, err
	}
	if s.Users, err = readUsers(ctx, q); err != nil {
		return nil, err
	}
	if s.SDGs, err = readSDGs(ctx, q); err != nil {
		return nil, err
	}
	if s.Numbers, err = readNumbers(ctx, q); err != nil {
		return nil, err
	}
	if s.Trunks, err = readTrunks(ctx, q); err != nil {
		return nil, err
	}
	if s.Callout, err = readCallout(ctx, q, nulls); err != nil {
		return nil, err
	}
	if s.Admins, err = readAdmins(ctx, q); err != nil {
		return nil, err
	}
	if s.Embed, err = readEmbed(ctx, q, nulls); err != nil {
		return nil, err
	}
	if s.Prompts, err = readPrompts(ctx, q); err != nil {
		return nil, err
	}
	s.Sites = orNil(s.Sites, nulls[nullSites])
	s.Users = orNil(s.Users, nulls[nullUsers])
	s.SDGs = orNil(s.SDGs, nulls[nullSDGs])
	s.Numbers = orNil(s.Numbers, nulls[nullNumbers])
	s.Trunks = orNil(s.Trunks, nulls[nullTrunks])
	s.Admins = orNil(s.Admins, nulls[nullAdmins])
	return s, nil
}
