package store

import (
	"errors"
	"testing"
	"time"

	"github.com/outpost-voice/outpost/account"
)

var ot0 = time.Date(2026, 11, 23, 9, 0, 0, 0, time.UTC)

func setOverride(s *Store, o SDGOverride) error {
	return s.Write(func(tx *Tx) error { return tx.SetSDGOverride(o) })
}

func overrides(t *testing.T, s *Store) map[string]SDGOverride {
	t.Helper()
	os, err := s.Reader().SDGOverrides(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]SDGOverride{}
	for _, o := range os {
		out[o.SDGID] = o
	}
	return out
}

// Schema 9 holds the overrides: one per SDG, set, replaced and cleared;
// a route that does not validate (an unknown user, a loop through the
// snapshot's routes) and an unknown SDG are refused and write nothing.
func TestSDGOverrides(t *testing.T) {
	s := openTest(t)
	if SchemaVersion() < 9 {
		t.Fatalf("schema version %d, want at least 9", SchemaVersion())
	}
	if got := overrides(t, s); len(got) != 0 {
		t.Fatalf("a new store has overrides: %v", got)
	}
	snap, raw := demoSnapshot(t)
	if err := setOverride(s, SDGOverride{SDGID: "sdg-operator", Route: &account.Route{Type: "user", ID: "u-bob"}, By: "admin", At: ot0}); !errors.Is(err, ErrUnknownSDG) {
		t.Errorf("override before any snapshot: %v, want ErrUnknownSDG", err)
	}
	apply(t, s, snap, raw)

	carol := SDGOverride{SDGID: "sdg-frontdesk", Route: &account.Route{Type: "user", ID: "u-carol"}, By: "admin", At: ot0.Add(1500 * time.Microsecond), Revision: snap.Revision}
	if err := setOverride(s, carol); err != nil {
		t.Fatal(err)
	}
	got := overrides(t, s)["sdg-frontdesk"]
	if got.Route.Type != "user" || got.Route.ID != "u-carol" || got.By != "admin" || !got.At.Equal(ot0.Add(time.Millisecond)) || got.Revision != snap.Revision {
		t.Errorf("stored %+v (route %+v)", got, got.Route)
	}
	number := SDGOverride{SDGID: "sdg-frontdesk", Route: &account.Route{Type: "number", Number: "+14155550188"}, By: "bob", At: ot0, Revision: snap.Revision}
	if err := setOverride(s, number); err != nil {
		t.Fatal(err)
	}
	if got := overrides(t, s)["sdg-frontdesk"]; got.Route.Number != "+14155550188" || got.By != "bob" {
		t.Errorf("after a replacement: %+v", got)
	}

	for name, tc := range map[string]struct {
		o    SDGOverride
		want error
	}{
		"unknown user": {SDGOverride{SDGID: "sdg-operator", Route: &account.Route{Type: "user", ID: "u-zed"}, By: "admin", At: ot0}, ErrInvalidOverride},
		"loop":         {SDGOverride{SDGID: "sdg-operator", Route: &account.Route{Type: "sdg", ID: "sdg-main-menu"}, By: "admin", At: ot0}, ErrInvalidOverride},
		"bad number":   {SDGOverride{SDGID: "sdg-operator", Route: &account.Route{Type: "number", Number: "0800"}, By: "admin", At: ot0}, ErrInvalidOverride},
		"unknown sdg":  {SDGOverride{SDGID: "sdg-nope", Route: &account.Route{Type: "user", ID: "u-bob"}, By: "admin", At: ot0}, ErrUnknownSDG},
		"no author":    {SDGOverride{SDGID: "sdg-operator", Route: &account.Route{Type: "user", ID: "u-bob"}, At: ot0}, ErrInvalidOverride},
	} {
		err := setOverride(s, tc.o)
		if !errors.Is(err, tc.want) {
			t.Errorf("%s: %v, want %v", name, err, tc.want)
		}
		var ve *account.ValidationError
		if name == "unknown user" && !errors.As(err, &ve) {
			t.Errorf("%s: %v does not carry the validation problems", name, err)
		}
		if _, ok := overrides(t, s)["sdg-operator"]; ok {
			t.Errorf("%s: refused, but written", name)
		}
	}
	// With the front desk re-pointed at the operator's number, the
	// operator may now point at the front desk: the override itself
	// counts in the loop check.
	if err := setOverride(s, SDGOverride{SDGID: "sdg-operator", Route: &account.Route{Type: "sdg", ID: "sdg-frontdesk"}, By: "admin", At: ot0}); err != nil {
		t.Errorf("no loop once the front desk is overridden: %v", err)
	}
	if err := setOverride(s, SDGOverride{SDGID: "sdg-frontdesk", Route: &account.Route{Type: "sdg", ID: "sdg-operator"}, By: "admin", At: ot0}); !errors.Is(err, ErrInvalidOverride) {
		t.Errorf("a loop made of two overrides: %v, want ErrInvalidOverride", err)
	}

	if err := setOverride(s, SDGOverride{SDGID: "sdg-frontdesk", By: "admin", At: ot0}); err != nil {
		t.Fatal(err)
	}
	if err := setOverride(s, SDGOverride{SDGID: "sdg-frontdesk", By: "admin", At: ot0}); err != nil {
		t.Errorf("clearing twice: %v", err)
	}
	if got := overrides(t, s); len(got) != 1 || got["sdg-operator"].SDGID == "" {
		t.Errorf("after a clear: %v, want the operator's only", got)
	}
}

// A newer revision drops, in its transaction, the overrides of the SDGs
// it changes or removes, and those whose route it makes invalid; the
// others stay.
func TestSDGOverridesSuperseded(t *testing.T) {
	s := openTest(t)
	snap, raw := demoSnapshot(t)
	apply(t, s, snap, raw)
	for _, o := range []SDGOverride{
		{SDGID: "sdg-frontdesk", Route: &account.Route{Type: "user", ID: "u-carol"}},
		{SDGID: "sdg-operator", Route: &account.Route{Type: "user", ID: "u-bob"}},
		{SDGID: "sdg-branch-sales", Route: &account.Route{Type: "user", ID: "u-erin"}},
	} {
		o.By, o.At, o.Revision = "admin", ot0, snap.Revision
		if err := setOverride(s, o); err != nil {
			t.Fatal(err)
		}
	}

	// Revision 2 renames the front desk (changed) and leaves the others.
	next := *snap
	next.Revision = snap.Revision + 1
	next.SDGs = append([]account.SDG(nil), snap.SDGs...)
	next.SDGs[0].Name = "Reception"
	var dropped []string
	err := s.Write(func(tx *Tx) error {
		touched, err := tx.OverriddenSDGsChangedBy(&next)
		if err != nil {
			return err
		}
		if err := tx.ReplaceConfig(&next, nil); err != nil {
			return err
		}
		dropped, err = tx.SupersedeSDGOverrides(next.Revision, touched)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if got := overrides(t, s); len(dropped) != 1 || dropped[0] != "sdg-frontdesk" || len(got) != 2 {
		t.Errorf("after a revision changing the front desk: dropped %v, kept %v", dropped, got)
	}

	// Changes putting the operator (touched, even unchanged) drop its
	// override only.
	changes := []account.Change{{Kind: account.KindSDGs, ID: "sdg-operator", Value: next.SDGs[1]}}
	err = s.Write(func(tx *Tx) error {
		if err := tx.ApplyChanges(next.Revision+1, changes); err != nil {
			return err
		}
		dropped, err = tx.SupersedeSDGOverrides(next.Revision+1, SDGsIn(changes))
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if got := overrides(t, s); len(dropped) != 1 || dropped[0] != "sdg-operator" || len(got) != 1 {
		t.Errorf("after changes putting the operator: dropped %v, kept %v", dropped, got)
	}

	// Removing the user an override names drops it, though its SDG is
	// untouched: u-zoe is added, the branch re-pointed at her, then she
	// is removed.
	zoe := account.User{ID: "u-zoe", Site: "branch", Name: "Zoe", Email: "zoe@acme.example", Extension: "2009",
		SIP: next.Users[len(next.Users)-1].SIP}
	zoe.SIP.Username = "zoe"
	changes = []account.Change{{Kind: account.KindUsers, ID: "u-zoe", Value: zoe}}
	err = s.Write(func(tx *Tx) error { return tx.ApplyChanges(next.Revision+2, changes) })
	if err != nil {
		t.Fatal(err)
	}
	if err := setOverride(s, SDGOverride{SDGID: "sdg-branch-sales", Route: &account.Route{Type: "user", ID: "u-zoe"},
		By: "admin", At: ot0, Revision: next.Revision + 2}); err != nil {
		t.Fatal(err)
	}
	changes = []account.Change{{Kind: account.KindUsers, ID: "u-zoe", Delete: true}}
	err = s.Write(func(tx *Tx) error {
		if err := tx.ApplyChanges(next.Revision+3, changes); err != nil {
			return err
		}
		dropped, err = tx.SupersedeSDGOverrides(next.Revision+3, SDGsIn(changes))
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if got := overrides(t, s); len(dropped) != 1 || dropped[0] != "sdg-branch-sales" || len(got) != 0 {
		t.Errorf("after changes removing the override's user: dropped %v, kept %v", dropped, got)
	}
}
