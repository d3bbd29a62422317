package calls

import (
	"context"
	"testing"
	"time"

	"github.com/outpost-voice/outpost/account"
	"github.com/outpost-voice/outpost/appliance/store"
)

// overriddenBook is the phoneBook with the front desk re-pointed at carol
// by an emergency override.
type overriddenBook struct{ *phoneBook }

func (overriddenBook) SDGOverrides(context.Context) ([]store.SDGOverride, error) {
	return []store.SDGOverride{
		{SDGID: "sdg-frontdesk", Route: &account.Route{Type: account.RouteUser, ID: "u-carol"}, By: "admin",
			At: time.Date(2026, 11, 23, 9, 0, 0, 0, time.UTC), Revision: 1},
		{SDGID: "sdg-gone", Route: &account.Route{Type: account.RouteUser, ID: "u-carol"}, By: "admin"},
	}, nil
}

// The group index gives the engine the override's route in place of the
// SDG's, and the status shows the override; an override of an SDG the
// directory does not hold is ignored.
func TestGroupIndexUsesOverride(t *testing.T) {
	b, _ := recorderB2BUA(t, acceptAll{}, overriddenBook{newPhoneBook()})
	idx, err := b.groups(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	g, ok := idx.SDG("sdg-frontdesk")
	if !ok || g.Route == nil || g.Route.Type != account.RouteUser || g.Route.ID != "u-carol" {
		t.Fatalf("front desk in the index: %+v (route %+v), want the override's route to u-carol", g, g.Route)
	}
	if _, ok := idx.SDG("sdg-gone"); ok {
		t.Errorf("an override made an SDG the directory does not hold")
	}
	gs, err := b.Groups(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if len(gs) != 1 || gs[0].Override == nil || gs[0].Override.By != "admin" || gs[0].Route != account.RouteUser ||
		len(gs[0].Members) != 1 || gs[0].Members[0].UserID != "u-carol" {
		t.Errorf("status: %+v", gs)
	}

	plain, _ := recorderB2BUA(t, acceptAll{}, newPhoneBook())
	gs, err = plain.Groups(t.Context())
	if err != nil || len(gs) != 1 || gs[0].Override != nil || gs[0].Route != account.RouteGroup {
		t.Errorf("without overrides: %+v, %v", gs, err)
	}
}
