package sbc

import (
	"errors"
	"maps"
	"reflect"
	"slices"
	"testing"

	"github.com/outpost-voice/outpost/account"
)

func TestClassify(t *testing.T) {
	for _, tc := range []struct {
		number              string
		code, country, zone string
		premium             bool
		err                 bool
	}{
		{number: "+16505550123", code: "1", zone: "NANP"},
		{number: "+14165550123", code: "1", zone: "NANP"}, // Toronto: NANP like the US
		{number: "+17875550123", code: "1", zone: "NANP"}, // Puerto Rico
		{number: "+18765550123", code: "1", country: "JM", zone: "JM"},
		{number: "+18095550123", code: "1", country: "DO", zone: "DO"},
		{number: "+12425550123", code: "1", country: "BS", zone: "BS"},
		{number: "+19005550123", code: "1", zone: "NANP", premium: true},
		{number: "+442079460000", code: "44", country: "GB", zone: "+44"},
		{number: "+35315550123", code: "353", country: "IE", zone: "+353"},
		{number: "+4930123456", code: "49", country: "DE", zone: "+49"},
		{number: "+33123456789", code: "33", country: "FR", zone: "+33"},
		{number: "+79161234567", code: "7", country: "RU", zone: "+7"},
		{number: "+77011234567", code: "7", country: "RU", zone: "+7"}, // Kazakhstan shares +7
		{number: "+3581234567", code: "358", country: "FI", zone: "+358"},
		{number: "+2901234", code: "290", zone: "+290"},     // Saint Helena: not in the table, still a code
		{number: "+88216123456", code: "882", zone: "+882"}, // international networks: a code of its own
		{number: "+6912345", code: "691", zone: "+691"},
		{number: "+1650555012", err: true},   // NANP needs 10 digits
		{number: "+165055501234", err: true}, // and not 11
		{number: "16505550123", err: true},
		{number: "+0123456", err: true},
		{number: "+44", err: true},
		{number: "+4412", err: true},
		{number: "+1234567890123456", err: true},
		{number: "+1650555012x", err: true},
		{number: "911", err: true},
		{number: "", err: true},
	} {
		d, err := Classify(tc.number)
		if (err != nil) != tc.err {
			t.Errorf("Classify(%q) error %v, want error %v", tc.number, err, tc.err)
			continue
		}
		if err != nil {
			if !errors.Is(err, ErrBadNumber) {
				t.Errorf("Classify(%q) = %v, want ErrBadNumber", tc.number, err)
			}
			continue
		}
		if d.CallingCode != tc.code || d.Country != tc.country || d.Zone != tc.zone || d.Premium != tc.premium {
			t.Errorf("Classify(%q) = %+v, want code %s country %q zone %s premium %v",
				tc.number, d, tc.code, tc.country, tc.zone, tc.premium)
		}
	}
}

func TestSiteZone(t *testing.T) {
	for country, want := range map[string]string{
		"US": "NANP", "CA": "NANP", "PR": "NANP", "us": "NANP", "JM": "JM", "GB": "+44", "IE": "+353",
		"DE": "+49", "KZ": "+7", "VA": "+39", "MC": "+377", "ZZ": "ZZ",
	} {
		if got := SiteZone(country); got != want {
			t.Errorf("SiteZone(%s) = %s, want %s", country, got, want)
		}
	}
	unknown := account.Site{ID: "quito", Country: "EC", MainNumber: "+59322555000"}
	if got := HomeZone(unknown); got != "+593" {
		t.Errorf("HomeZone of a site outside the table = %s, want its main number's +593", got)
	}
}

// Every ISO code appears once across the tables, so SiteZone is well defined.
func TestCountryTablesAreConsistent(t *testing.T) {
	seen := map[string]string{}
	add := func(iso, where string) {
		if prev, dup := seen[iso]; dup && prev != where {
			t.Errorf("%s is in %s and %s", iso, prev, where)
		}
		seen[iso] = where
	}
	for _, c := range nanpHome {
		add(c, "NANP")
	}
	for _, c := range caribbean {
		add(c, "caribbean")
	}
	for _, code := range slices.Sorted(maps.Keys(countries)) {
		for _, c := range countries[code] {
			add(c, "+"+code)
		}
		if len(code) == 2 && !slices.Contains(twoDigitCodes, code) {
			t.Errorf("+%s in the table but not an assigned two-digit code", code)
		}
	}
}

func TestPolicyCheck(t *testing.T) {
	hq := hqSite()
	london := account.Site{ID: "london", Country: "GB", MainNumber: "+442079460000"}
	kingston := account.Site{ID: "kingston", Country: "JM", MainNumber: "+18765550000"}
	def := DefaultPolicy()
	list := Policy{International: InternationalList, AllowedCountries: []string{"GB", "+353", "JM"}}
	all := Policy{International: InternationalAll, MaxCallsPerUser: -1}
	req := func(site account.Site, number string) OutboundRequest {
		return OutboundRequest{Authenticated: true, UserID: "u-alice", Site: site, Number: number}
	}
	busy := func(r OutboundRequest, n int) OutboundRequest { r.ActiveCalls = n; return r }
	emergency := func(r OutboundRequest) OutboundRequest { r.Emergency = true; return r }
	anon := func(r OutboundRequest) OutboundRequest { r.Authenticated = false; return r }
	for _, tc := range []struct {
		name string
		p    Policy
		r    OutboundRequest
		want error
	}{
		{"domestic", def, req(hq, "+14155550123"), nil},
		{"NANP: Canada from the US", def, req(hq, "+14165550123"), nil},
		{"NANP: Jamaica from the US is international", def, req(hq, "+18765550123"), ErrBarred},
		{"NANP: the US from Jamaica is international", def, req(kingston, "+14155550123"), ErrBarred},
		{"Jamaica domestic", def, req(kingston, "+18765550199"), nil},
		{"premium rate", def, req(hq, "+19005550123"), ErrBarred},
		{"premium rate allowed", Policy{AllowPremium: true}, req(hq, "+19005550123"), nil},
		{"UK from the US", def, req(hq, "+442079460000"), ErrBarred},
		{"UK domestic", def, req(london, "+442079460001"), nil},
		{"US from the UK", def, req(london, "+14155550123"), ErrBarred},
		{"list: UK by ISO", list, req(hq, "+442079460000"), nil},
		{"list: Ireland by code", list, req(hq, "+35315550123"), nil},
		{"list: Jamaica", list, req(hq, "+18765550123"), nil},
		{"list: Germany not listed", list, req(hq, "+4930123456"), ErrBarred},
		{"list: domestic still fine", list, req(hq, "+14155550123"), nil},
		{"all", all, req(hq, "+4930123456"), nil},
		{"all: premium still needs its flag", all, req(hq, "+19005550123"), ErrBarred},
		{"unauthenticated", def, anon(req(hq, "+14155550123")), ErrUnauthenticated},
		{"no user", def, OutboundRequest{Authenticated: true, Site: hq, Number: "+14155550123"}, ErrUnauthenticated},
		{"unauthenticated emergency", def, emergency(anon(req(hq, "911"))), ErrUnauthenticated},
		{"one call in progress", def, busy(req(hq, "+14155550123"), 1), nil},
		{"two in progress: limit 2", def, busy(req(hq, "+14155550123"), 2), ErrTooManyCalls},
		{"zero policy means the default limit", Policy{}, busy(req(hq, "+14155550123"), 2), ErrTooManyCalls},
		{"limit 5", Policy{MaxCallsPerUser: 5}, busy(req(hq, "+14155550123"), 4), nil},
		{"no limit", all, busy(req(hq, "+14155550123"), 100), nil},
		{"emergency over the limit", def, emergency(busy(req(hq, "911"), 9)), nil},
		{"emergency dial string is not E.164", def, emergency(req(hq, "933")), nil},
		{"not E.164", def, req(hq, "4155550123"), ErrBadNumber},
	} {
		err := tc.p.Check(tc.r)
		if (tc.want == nil) != (err == nil) || (tc.want != nil && !errors.Is(err, tc.want)) {
			t.Errorf("%s: Check = %v, want %v", tc.name, err, tc.want)
		}
	}
}

func TestPolicyCallLimit(t *testing.T) {
	for _, tc := range []struct{ max, want int }{{0, 2}, {1, 1}, {7, 7}, {-1, 0}} {
		if got := (Policy{MaxCallsPerUser: tc.max}).CallLimit(); got != tc.want {
			t.Errorf("CallLimit(%d) = %d, want %d", tc.max, got, tc.want)
		}
	}
}

func TestSitePolicy(t *testing.T) {
	hq := hqSite()
	if got, want := SitePolicy(hq), DefaultPolicy(); !reflect.DeepEqual(got, want) {
		t.Errorf("no outbound: SitePolicy = %+v, want %+v", got, want)
	}
	hq.Outbound = &account.Outbound{}
	if got := SitePolicy(hq); got.International != InternationalSameCountry || got.CallLimit() != DefaultMaxCallsPerUser {
		t.Errorf("empty outbound: SitePolicy = %+v, want same_country and the default limit", got)
	}
	hq.Outbound = &account.Outbound{International: account.InternationalList, AllowedCountries: []string{"GB"},
		AllowPremium: true, MaxCallsPerUser: -1}
	got := SitePolicy(hq)
	want := Policy{International: InternationalList, AllowedCountries: []string{"GB"}, AllowPremium: true, MaxCallsPerUser: -1}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("SitePolicy = %+v, want %+v", got, want)
	}
	if err := got.Check(OutboundRequest{Authenticated: true, UserID: "u", Site: hq, Number: "+442079460000", ActiveCalls: 50}); err != nil {
		t.Errorf("a listed country with no limit: %v", err)
	}
}
