package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/outpost-voice/outpost/account"
)

// The functions here turn table rows back into the account model, exactly as
// account.DecodeBytes builds it from the canonical document: lists keep their
// order, a list stored as null comes back nil and an empty one as empty.

// orNil gives nil for an empty list the snapshot had as null.
func orNil[T any](list []T, null bool) []T {
	if null && len(list) == 0 {
		return nil
	}
	return list
}

// emptyOrNil starts a per-row list: nil when it was null, else empty.
func emptyOrNil[T any](null bool) []T {
	if null {
		return nil
	}
	return []T{}
}

func readAccount(ctx context.Context, q querier) (a account.Account, found bool, err error) {
	err = q.QueryRowContext(ctx, `SELECT id, name, sip_realm FROM account WHERE slot = 1`).
		Scan(&a.ID, &a.Name, &a.SIPRealm)
	if errors.Is(err, sql.ErrNoRows) {
		return account.Account{}, false, nil
	}
	if err != nil {
		return account.Account{}, false, fmt.Errorf("account: %w", err)
	}
	return a, true, nil
}

func readNullLists(ctx context.Context, q querier) (map[string]bool, error) {
	rows, err := q.QueryContext(ctx, `SELECT name FROM null_lists`)
	if err != nil {
		return nil, fmt.Errorf("null lists: %w", err)
	}
	defer rows.Close()
	nulls := map[string]bool{}
	for rows.Next() {
		var name string
		if err := rows.Scan(&name); err != nil {
			return nil, fmt.Errorf("null lists: %w", err)
		}
		nulls[name] = true
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("null lists: %w", err)
	}
	return nulls, nil
}

// readSites reads every site, or only the one with id when id is not empty.
func readSites(ctx context.Context, q querier, id string) ([]account.Site, error) {
	rows, err := q.QueryContext(ctx, `SELECT id, name, country, timezone, area_code, main_number,
		emergency_numbers_null, elin_pool_null, street, city, region, postal_code, address_country, outbound
		FROM sites WHERE ?1 = '' OR id = ?1 ORDER BY ord`, id)
	if err != nil {
		return nil, fmt.Errorf("sites: %w", err)
	}
	defer rows.Close()
	sites := []account.Site{}
	byID := map[string]int{}
	for rows.Next() {
		var s account.Site
		var numbersNull, elinsNull bool
		var outbound sql.NullString
		a := &s.Emergency.Address
		if err := rows.Scan(&s.ID, &s.Name, &s.Country, &s.Timezone, &s.AreaCode, &s.MainNumber,
			&numbersNull, &elinsNull, &a.Street, &a.City, &a.Region, &a.PostalCode, &a.Country, &outbound); err != nil {
			return nil, fmt.Errorf("sites: %w", err)
		}
		if outbound.Valid {
			s.Outbound = new(account.Outbound)
			if err := json.Unmarshal([]byte(outbound.String), s.Outbound); err != nil {
				return nil, fmt.Errorf("site %s: outbound: %w", s.ID, err)
			}
		}
		s.Emergency.Numbers = emptyOrNil[string](numbersNull)
		s.Emergency.ELINPool = emptyOrNil[string](elinsNull)
		byID[s.ID] = len(sites)
		sites = append(sites, s)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sites: %w", err)
	}
	rows.Close()

	children := []struct {
		query string
		list  func(*account.Site) *[]string
	}{
		{`SELECT site_id, number FROM site_emergency_numbers WHERE ?1 = '' OR site_id = ?1 ORDER BY site_id, ord`,
			func(s *account.Site) *[]string { return &s.Emergency.Numbers }},
		{`SELECT site_id, elin FROM site_elins WHERE ?1 = '' OR site_id = ?1 ORDER BY site_id, ord`,
			func(s *account.Site) *[]string { return &s.Emergency.ELINPool }},
	}
	for _, c := range children {
		if err := readChildStrings(ctx, q, c.query, id, func(siteID, v string) {
			if i, ok := byID[siteID]; ok {
				list := c.list(&sites[i])
				*list = append(*list, v)
			}
		}); err != nil {
			return nil, fmt.Errorf("sites: %w", err)
		}
	}
	return sites, nil
}

// readChildStrings runs a query yielding (parent id, value) rows.
func readChildStrings(ctx context.Context, q querier, query string, arg any, add func(parent, v string)) error {
	rows, err := q.QueryContext(ctx, query, arg)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var parent, v string
		if err := rows.Scan(&parent, &v); err != nil {
			return err
		}
		add(parent, v)
	}
	return rows.Err()
}

func readUsers(ctx context.Context, q querier) ([]account.User, error) {
	rows, err := q.QueryContext(ctx, usersQuery)
	if err != nil {
		return nil, fmt.Errorf("users: %w", err)
	}
	return scanUsers(rows)
}

// scanUsers reads rows of userQuery and closes them.
func scanUsers(rows *sql.Rows) ([]account.User, error) {
	defer rows.Close()
	users := []account.User{}
	for rows.Next() {
		var u account.User
		var numbersNull bool
		var numbers []byte
		var voicemail sql.NullString
		if err := rows.Scan(&u.ID, &u.Site, &u.Name, &u.Email, &u.Extension, &numbersNull,
			&u.SIP.Username, &u.SIP.HA1MD5, &u.SIP.HA1SHA256, &u.Priority, &voicemail, &numbers); err != nil {
			return nil, fmt.Errorf("users: %w", err)
		}
		if voicemail.Valid {
			u.Voicemail = new(account.Voicemail)
			if err := json.Unmarshal([]byte(voicemail.String), u.Voicemail); err != nil {
				return nil, fmt.Errorf("user %s: voicemail: %w", u.ID, err)
			}
		}
		u.Numbers = emptyOrNil[string](numbersNull)
		if string(numbers) != "[]" {
			if err := json.Unmarshal(numbers, &u.Numbers); err != nil {
				return nil, fmt.Errorf("user %s: numbers: %w", u.ID, err)
			}
		}
		users = append(users, u)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("users: %w", err)
	}
	return users, nil
}

// decodeRoute turns a stored canonical route back into the model.
func decodeRoute(body string) (*account.Route, error) {
	var r *account.Route
	if err := json.Unmarshal([]byte(body), &r); err != nil {
		return nil, err
	}
	return r, nil
}

func readSDGs(ctx context.Context, q querier) ([]account.SDG, error) {
	rows, err := q.QueryContext(ctx, `SELECT id, site, name, extension, route FROM sdgs ORDER BY ord`)
	if err != nil {
		return nil, fmt.Errorf("sdgs: %w", err)
	}
	defer rows.Close()
	sdgs := []account.SDG{}
	for rows.Next() {
		var g account.SDG
		var route string
		if err := rows.Scan(&g.ID, &g.Site, &g.Name, &g.Extension, &route); err != nil {
			return nil, fmt.Errorf("sdgs: %w", err)
		}
		if g.Route, err = decodeRoute(route); err != nil {
			return nil, fmt.Errorf("sdg %s: route: %w", g.ID, err)
		}
		sdgs = append(sdgs, g)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sdgs: %w", err)
	}
	return sdgs, nil
}

func readNumbers(ctx context.Context, q querier) ([]account.Number, error) {
	rows, err := q.QueryContext(ctx, `SELECT number, site, route FROM numbers ORDER BY ord`)
	if err != nil {
		return nil, fmt.Errorf("numbers: %w", err)
	}
	defer rows.Close()
	numbers := []account.Number{}
	for rows.Next() {
		var n account.Number
		var route string
		if err := rows.Scan(&n.Number, &n.Site, &route); err != nil {
			return nil, fmt.Errorf("numbers: %w", err)
		}
		if n.Route, err = decodeRoute(route); err != nil {
			return nil, fmt.Errorf("number %s: route: %w", n.Number, err)
		}
		numbers = append(numbers, n)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("numbers: %w", err)
	}
	return numbers, nil
}

func readTrunks(ctx context.Context, q querier) ([]account.Trunk, error) {
	rows, err := q.QueryContext(ctx, `SELECT id, site, name, host, port, transport, priority, weight,
		options_interval_s, max_channels, codecs, srtp FROM trunks ORDER BY ord`)
	if err != nil {
		return nil, fmt.Errorf("trunks: %w", err)
	}
	defer rows.Close()
	trunks := []account.Trunk{}
	for rows.Next() {
		var t account.Trunk
		var codecs string
		if err := rows.Scan(&t.ID, &t.Site, &t.Name, &t.Host, &t.Port, &t.Transport, &t.Priority,
			&t.Weight, &t.OptionsIntervalS, &t.MaxChannels, &codecs, &t.SRTP); err != nil {
			return nil, fmt.Errorf("trunks: %w", err)
		}
		if err := json.Unmarshal([]byte(codecs), &t.Codecs); err != nil {
			return nil, fmt.Errorf("trunk %s: codecs: %w", t.ID, err)
		}
		trunks = append(trunks, t)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("trunks: %w", err)
	}
	return trunks, nil
}

func readCallout(ctx context.Context, q querier, nulls map[string]bool) (account.Callout, error) {
	var c account.Callout
	err := q.QueryRowContext(ctx, `SELECT greeting_prompt, require_press_1 FROM callout WHERE slot = 1`).
		Scan(&c.GreetingPrompt, &c.RequirePress1)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return account.Callout{}, fmt.Errorf("callout: %w", err)
	}
	rows, err := q.QueryContext(ctx, `SELECT country, number, dedicated FROM callout_caller_ids ORDER BY ord`)
	if err != nil {
		return account.Callout{}, fmt.Errorf("callout caller ids: %w", err)
	}
	defer rows.Close()
	c.CallerIDs = []account.CallerID{}
	for rows.Next() {
		var id account.CallerID
		if err := rows.Scan(&id.Country, &id.Number, &id.Dedicated); err != nil {
			return account.Callout{}, fmt.Errorf("callout caller ids: %w", err)
		}
		c.CallerIDs = append(c.CallerIDs, id)
	}
	if err := rows.Err(); err != nil {
		return account.Callout{}, fmt.Errorf("callout caller ids: %w", err)
	}
	c.CallerIDs = orNil(c.CallerIDs, nulls[nullCallerIDs])
	return c, nil
}

func readAdmins(ctx context.Context, q querier) ([]account.Admin, error) {
	rows, err := q.QueryContext(ctx, `SELECT username, role, bcrypt FROM admins ORDER BY ord`)
	if err != nil {
		return nil, fmt.Errorf("admins: %w", err)
	}
	defer rows.Close()
	admins := []account.Admin{}
	for rows.Next() {
		var a account.Admin
		if err := rows.Scan(&a.Username, &a.Role, &a.Bcrypt); err != nil {
			return nil, fmt.Errorf("admins: %w", err)
		}
		admins = append(admins, a)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("admins: %w", err)
	}
	return admins, nil
}

func readEmbed(ctx context.Context, q querier, nulls map[string]bool) (account.Embed, error) {
	rows, err := q.QueryContext(ctx, `SELECT origin FROM embed_origins ORDER BY ord`)
	if err != nil {
		return account.Embed{}, fmt.Errorf("embed origins: %w", err)
	}
	defer rows.Close()
	e := account.Embed{AllowedOrigins: []string{}}
	for rows.Next() {
		var o string
		if err := rows.Scan(&o); err != nil {
			return account.Embed{}, fmt.Errorf("embed origins: %w", err)
		}
		e.AllowedOrigins = append(e.AllowedOrigins, o)
	}
	if err := rows.Err(); err != nil {
		return account.Embed{}, fmt.Errorf("embed origins: %w", err)
	}
	e.AllowedOrigins = orNil(e.AllowedOrigins, nulls[nullAllowedOrigins])
	return e, nil
}

func readPrompts(ctx context.Context, q querier) ([]account.Prompt, error) {
	rows, err := q.QueryContext(ctx, `SELECT name, blob, sha256 FROM prompts ORDER BY ord`)
	if err != nil {
		return nil, fmt.Errorf("prompts: %w", err)
	}
	defer rows.Close()
	var prompts []account.Prompt // none is nil, as account.DecodeBytes gives it
	for rows.Next() {
		var p account.Prompt
		if err := rows.Scan(&p.Name, &p.Blob, &p.SHA256); err != nil {
			return nil, fmt.Errorf("prompts: %w", err)
		}
		prompts = append(prompts, p)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("prompts: %w", err)
	}
	return prompts, nil
}
