package calls

import (
	"testing"

	"github.com/outpost-voice/outpost/account"
)

// plan is a Plan over fixed tables, shaped like the demo account.
type plan struct {
	dial  map[string]Target
	sites map[string]account.Site
}

func (p plan) Lookup(d string) (Target, bool)      { t, ok := p.dial[d]; return t, ok }
func (p plan) Site(id string) (account.Site, bool) { s, ok := p.sites[id]; return s, ok }

func demoPlan() plan {
	return plan{
		dial: map[string]Target{
			"1001": {DestUser, "u-alice"}, "+16505550101": {DestUser, "u-alice"},
			"2001": {DestUser, "u-dave"}, "+13125550201": {DestUser, "u-dave"},
			"1900": {DestSDG, "sdg-frontdesk"}, "1999": {DestSDG, "sdg-main-menu"},
			"+16505550100": {DestNumber, "+16505550100"},
		},
		sites: map[string]account.Site{
			"hq": {ID: "hq", Country: "US", AreaCode: "650",
				Emergency: account.Emergency{Numbers: []string{"911", "933"}}},
			"branch": {ID: "branch", Country: "US", AreaCode: "312",
				Emergency: account.Emergency{Numbers: []string{"911"}}},
			"london": {ID: "london", Country: "GB", AreaCode: "20",
				Emergency: account.Emergency{Numbers: []string{"999", "112"}}},
		},
	}
}

func TestResolve(t *testing.T) {
	p := demoPlan()
	tests := []struct {
		name, site, digits string
		want               Destination
	}{
		{"extension same site", "hq", "1001", Destination{Kind: DestUser, ID: "u-alice"}},
		{"extension other site", "hq", "2001", Destination{Kind: DestUser, ID: "u-dave"}},
		{"sdg extension", "branch", "1900", Destination{Kind: DestSDG, ID: "sdg-frontdesk"}},
		{"ivr sdg", "hq", "1999", Destination{Kind: DestSDG, ID: "sdg-main-menu"}},
		{"did in e164", "hq", "+16505550101", Destination{Kind: DestUser, ID: "u-alice"}},
		{"did as 10 digits", "branch", "6505550101", Destination{Kind: DestUser, ID: "u-alice"}},
		{"did as 1+10 digits", "hq", "13125550201", Destination{Kind: DestUser, ID: "u-dave"}},
		{"did as 7 digits in its area", "hq", "5550101", Destination{Kind: DestUser, ID: "u-alice"}},
		{"did with separators", "hq", "+1 (312) 555-0201", Destination{Kind: DestUser, ID: "u-dave"}},
		{"numbers entry stays internal", "branch", "6505550100", Destination{Kind: DestNumber, ID: "+16505550100"}},
		{"emergency 911", "hq", "911", Destination{Kind: DestEmergency, Number: "911"}},
		{"emergency 933 at hq", "hq", "933", Destination{Kind: DestEmergency, Number: "933"}},
		{"933 not emergency at branch", "branch", "933", Destination{Kind: DestInvalid, Reason: "not an extension of the account and not a dialable number"}},
		{"uk emergency", "london", "999", Destination{Kind: DestEmergency, Number: "999"}},
		{"external 10 digits", "hq", "4155550123", Destination{Kind: DestExternal, Number: "+14155550123"}},
		{"external 7 digits uses caller's area", "branch", "5550199", Destination{Kind: DestExternal, Number: "+13125550199"}},
		{"external 011 international", "hq", "011442075550100", Destination{Kind: DestExternal, Number: "+442075550100"}},
		{"external e164", "hq", "+442075550100", Destination{Kind: DestExternal, Number: "+442075550100"}},
		{"uk national with trunk 0", "london", "02075550100", Destination{Kind: DestExternal, Number: "+442075550100"}},
		{"uk international 00", "london", "0016505550199", Destination{Kind: DestExternal, Number: "+16505550199"}},
		{"star code", "hq", "*72", Destination{Kind: DestInvalid, Reason: "not an extension of the account and not a dialable number"}},
		{"letters", "hq", "alice", Destination{Kind: DestInvalid, Reason: "nothing dialled"}},
		{"empty", "hq", "", Destination{Kind: DestInvalid, Reason: "nothing dialled"}},
		{"too short", "hq", "12", Destination{Kind: DestInvalid, Reason: "not an extension of the account and not a dialable number"}},
		{"plus zero", "hq", "+0123", Destination{Kind: DestInvalid, Reason: "not an extension of the account and not a dialable number"}},
		{"unknown site: only e164 out", "nowhere", "+14155550123", Destination{Kind: DestExternal, Number: "+14155550123"}},
		{"unknown site: extension still works", "nowhere", "1001", Destination{Kind: DestUser, ID: "u-alice"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Resolve(Dial{CallerSite: tt.site, Digits: tt.digits}, p); got != tt.want {
				t.Errorf("Resolve(%s, %q) = %+v, want %+v", tt.site, tt.digits, got, tt.want)
			}
		})
	}
}

func FuzzResolve(f *testing.F) {
	for _, s := range []string{"1001", "+16505550101", "911", "011442075550100", "*72#", "5550101", "+1 (650)"} {
		f.Add("hq", s)
	}
	p := demoPlan()
	f.Fuzz(func(t *testing.T, site, digits string) {
		d := Resolve(Dial{CallerSite: site, Digits: digits}, p)
		switch d.Kind {
		case DestExternal:
			if !isE164(d.Number) {
				t.Fatalf("external %q is not E.164", d.Number)
			}
		case DestUser, DestSDG, DestNumber:
			if d.ID == "" {
				t.Fatal("internal destination without an id")
			}
		case DestEmergency, DestInvalid:
		default:
			t.Fatalf("unknown kind %q", d.Kind)
		}
	})
}

// Feature codes (park's and voicemail's) are checked before anything
// else and never sent to a trunk; an unknown one is not dialable.
func TestResolveFeatureCodes(t *testing.T) {
	codes := []FeatureCode{{Code: "*68", Name: FeaturePark}, {Code: "*88", Name: FeatureRetrieve, Arg: true},
		{Code: VoicemailCode, Name: FeatureVoicemail}}
	for _, tc := range []struct {
		dial string
		want Destination
	}{
		{"*68", Destination{Kind: DestFeature, ID: FeaturePark}},
		{"*883", Destination{Kind: DestFeature, ID: FeatureRetrieve, Number: "3"}},
		{"*8812", Destination{Kind: DestFeature, ID: FeatureRetrieve, Number: "12"}},
		{"*88", Destination{Kind: DestInvalid}},   // a slot is needed
		{"*88*1", Destination{Kind: DestInvalid}}, // digits only
		{"*681", Destination{Kind: DestInvalid}},  // exact code
		{"*99", Destination{Kind: DestInvalid}},   // no such code: never a trunk
		{"*97", Destination{Kind: DestFeature, ID: FeatureVoicemail}},
		{" *97 ", Destination{Kind: DestFeature, ID: FeatureVoicemail}},
		{"*971", Destination{Kind: DestInvalid}},
		{"97", Destination{Kind: DestInvalid}},
	} {
		got := Resolve(Dial{CallerSite: "site-hq", Digits: tc.dial, Features: codes}, emptyPlan{})
		if got.Kind != tc.want.Kind || got.ID != tc.want.ID || got.Number != tc.want.Number {
			t.Errorf("Resolve(%q) = %+v, want %+v", tc.dial, got, tc.want)
		}
	}
}

type emptyPlan struct{}

func (emptyPlan) Lookup(string) (Target, bool) { return Target{}, false }
func (emptyPlan) Site(string) (account.Site, bool) {
	return account.Site{ID: "site-hq", Country: "US", AreaCode: "650"}, true
}
