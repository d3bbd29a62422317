package sbc

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/outpost-voice/outpost/account"
)

// International settings of a Policy.
const (
	InternationalSameCountry = "same_country" // only the site's own country (NANP: the US/CA zone)
	InternationalList        = "list"         // the site's country and AllowedCountries
	InternationalAll         = "all"          // anywhere
)

// DefaultMaxCallsPerUser is the per-user concurrent outbound limit.
const DefaultMaxCallsPerUser = 2

// Policy is a site's toll-fraud policy. The zero value means DefaultPolicy;
// SitePolicy makes it from a site's outbound setting in the snapshot.
type Policy struct {
	International    string   // InternationalSameCountry (default), InternationalList or InternationalAll
	AllowedCountries []string // for InternationalList: ISO alpha-2 ("GB", "JM"), "+code" ("+353") or "NANP"
	AllowPremium     bool     // premium-rate numbers the table knows (+1 900)
	MaxCallsPerUser  int      // concurrent outbound calls per user; 0: DefaultMaxCallsPerUser; < 0: no limit
}

// DefaultPolicy: the site's own country only, no premium rate, two calls per user.
func DefaultPolicy() Policy {
	return Policy{International: InternationalSameCountry, MaxCallsPerUser: DefaultMaxCallsPerUser}
}

// SitePolicy is the policy of a site: its outbound setting, or
// DefaultPolicy when it has none.
func SitePolicy(site account.Site) Policy {
	o := site.Outbound
	if o == nil {
		return DefaultPolicy()
	}
	p := Policy{International: o.International, AllowedCountries: o.AllowedCountries,
		AllowPremium: o.AllowPremium, MaxCallsPerUser: o.MaxCallsPerUser}
	if p.International == "" {
		p.International = InternationalSameCountry
	}
	return p
}

// CallLimit is the per-user limit to pass to Channels.Acquire (< 1: none).
func (p Policy) CallLimit() int {
	if p.MaxCallsPerUser == 0 {
		return DefaultMaxCallsPerUser
	}
	return max(p.MaxCallsPerUser, 0)
}

// Policy errors; Check wraps them with what to do.
var (
	ErrUnauthenticated = errors.New("caller not authenticated")
	ErrTooManyCalls    = errors.New("too many outbound calls")
	ErrBarred          = errors.New("destination barred by the site's policy")
	ErrBadNumber       = errors.New("not an E.164 number")
)

// OutboundRequest is one outbound call to judge.
type OutboundRequest struct {
	Authenticated bool
	UserID        string
	Site          account.Site // the caller's site
	Number        string       // E.164 (from calls.Resolve), or the emergency dial string
	Emergency     bool
	ActiveCalls   int // the user's outbound calls already in progress
}

// Check decides whether the call may go out. It is pure. Every call needs an
// authenticated user (an emergency call too: without one there is no site
// to locate it). Emergency calls are then always allowed; other calls must
// be under the user's limit and to a destination the site allows. Check
// decides; the B2BUA then takes the user's slot with Channels.Acquire(user,
// p.CallLimit(), emergency), which enforces the limit atomically.
func (p Policy) Check(r OutboundRequest) error {
	if !r.Authenticated || r.UserID == "" {
		return fmt.Errorf("%w: outbound calls need a registered, authenticated phone", ErrUnauthenticated)
	}
	if r.Emergency {
		return nil
	}
	if limit := p.CallLimit(); limit > 0 && r.ActiveCalls >= limit {
		return fmt.Errorf("%w: user %s already has %d of %d; end a call first", ErrTooManyCalls, r.UserID, r.ActiveCalls, limit)
	}
	d, err := Classify(r.Number)
	if err != nil {
		return err
	}
	if d.Premium && !p.AllowPremium {
		return fmt.Errorf("%w: %s is premium rate; the site's policy must allow premium numbers", ErrBarred, r.Number)
	}
	home := HomeZone(r.Site)
	if d.Zone == home || p.International == InternationalAll {
		return nil
	}
	if p.International == InternationalList && slices.ContainsFunc(p.AllowedCountries, func(c string) bool { return entryZone(c) == d.Zone }) {
		return nil
	}
	return fmt.Errorf("%w: %s is in %s, not in site %s's %s; the site's policy must allow %s",
		ErrBarred, r.Number, d.Zone, r.Site.ID, home, d.Zone)
}

// HomeZone is the zone of a site: SiteZone of its country or, when the table
// does not know the country, the zone of its main number.
func HomeZone(site account.Site) string {
	zone := SiteZone(site.Country)
	if zone != strings.ToUpper(site.Country) || site.MainNumber == "" {
		return zone
	}
	if d, err := Classify(site.MainNumber); err == nil {
		return d.Zone
	}
	return zone
}

// Destination is an E.164 number's country, as far as the table knows it.
type Destination struct {
	Number      string
	CallingCode string // ITU country calling code without "+": "1", "44", "353"
	Country     string // ISO alpha-2 when known (for shared codes, the main country); "" otherwise
	Zone        string // what "same country" compares: "NANP", a NANP country's ISO code, or "+code"
	Premium     bool   // premium rate (+1 900)
}

// Classify finds an E.164 number's calling code and zone. The code's
// length follows ITU's assignment (1 and 7 one digit, the assigned two-digit
// codes, else three), so every number gets a code; Country needs the table.
//
// Limits: +1 is split only for the independent Caribbean NANP members (by
// area code); US and Canada (and US territories) are one "NANP" zone.
// Shared codes (+7 RU/KZ, +44 GB/GG/JE/IM, +39 IT/VA, ...) are one zone.
// Premium rate is known only for +1 900: the toll-fraud guard's main line is
// "not abroad", not a tariff database.
func Classify(e164 string) (Destination, error) {
	d := Destination{Number: e164}
	digits, ok := strings.CutPrefix(e164, "+")
	if !ok || len(digits) < 5 || len(digits) > 15 || digits[0] == '0' || strings.Trim(digits, "0123456789") != "" {
		return d, fmt.Errorf("%w: %q; want + and 5 to 15 digits", ErrBadNumber, e164)
	}
	switch {
	case digits[0] == '1' || digits[0] == '7':
		d.CallingCode = digits[:1]
	case slices.Contains(twoDigitCodes, digits[:2]):
		d.CallingCode = digits[:2]
	default:
		d.CallingCode = digits[:3]
	}
	if d.CallingCode == "1" {
		if len(digits) != 11 {
			return d, fmt.Errorf("%w: %q; NANP numbers are +1 and 10 digits", ErrBadNumber, e164)
		}
		area := digits[1:4]
		d.Zone, d.Country = "NANP", ""
		if c, ok := caribbean[area]; ok {
			d.Zone, d.Country = c, c
		}
		d.Premium = area == "900"
		return d, nil
	}
	if len(digits)-len(d.CallingCode) < 4 {
		return d, fmt.Errorf("%w: %q is too short after its country code +%s", ErrBadNumber, e164, d.CallingCode)
	}
	d.Zone = "+" + d.CallingCode
	if cs := countries[d.CallingCode]; len(cs) > 0 {
		d.Country = cs[0]
	}
	return d, nil
}

// SiteZone is the zone of a site's country (ISO alpha-2): "NANP" for the US,
// Canada and US territories, the ISO code for Caribbean NANP members, "+code"
// for the table's other countries, and the ISO code itself when unknown (so
// nothing abroad matches it).
func SiteZone(country string) string {
	country = strings.ToUpper(country)
	if slices.Contains(nanpHome, country) {
		return "NANP"
	}
	for _, c := range caribbean {
		if c == country {
			return c
		}
	}
	for code, cs := range countries {
		if slices.Contains(cs, country) {
			return "+" + code
		}
	}
	return country
}

// entryZone is the zone an AllowedCountries entry names.
func entryZone(entry string) string {
	entry = strings.TrimSpace(entry)
	if strings.HasPrefix(entry, "+") || strings.EqualFold(entry, "NANP") {
		return strings.ToUpper(entry)
	}
	return SiteZone(entry)
}

// twoDigitCodes are ITU's assigned two-digit country calling codes.
var twoDigitCodes = []string{
	"20", "27", "30", "31", "32", "33", "34", "36", "39", "40", "41", "43", "44", "45", "46", "47",
	"48", "49", "51", "52", "53", "54", "55", "56", "57", "58", "60", "61", "62", "63", "64", "65",
	"66", "81", "82", "84", "86", "90", "91", "92", "93", "94", "95", "98",
}

// nanpHome is the part of NANP that counts as one country: the US, Canada
// and the US territories.
var nanpHome = []string{"US", "CA", "PR", "VI", "GU", "MP", "AS"}

// caribbean maps the area codes of NANP members outside nanpHome to their
// countries: the classic toll-fraud destinations that dial like domestic calls.
var caribbean = map[string]string{
	"242": "BS", "246": "BB", "264": "AI", "268": "AG", "284": "VG", "345": "KY", "441": "BM",
	"473": "GD", "649": "TC", "658": "JM", "876": "JM", "664": "MS", "721": "SX", "758": "LC",
	"767": "DM", "784": "VC", "809": "DO", "829": "DO", "849": "DO", "868": "TT", "869": "KN",
}

// countries maps calling codes (other than +1) to ISO alpha-2 countries, the
// main one first: Europe and the countries businesses commonly call.
var countries = map[string][]string{
	"7": {"RU", "KZ"}, "20": {"EG"}, "27": {"ZA"}, "30": {"GR"}, "31": {"NL"}, "32": {"BE"},
	"33": {"FR"}, "34": {"ES"}, "36": {"HU"}, "39": {"IT", "VA"}, "40": {"RO"}, "41": {"CH"},
	"43": {"AT"}, "44": {"GB", "GG", "JE", "IM"}, "45": {"DK"}, "46": {"SE"}, "47": {"NO", "SJ"},
	"48": {"PL"}, "49": {"DE"}, "51": {"PE"}, "52": {"MX"}, "53": {"CU"}, "54": {"AR"}, "55": {"BR"},
	"56": {"CL"}, "57": {"CO"}, "58": {"VE"}, "60": {"MY"}, "61": {"AU"}, "62": {"ID"}, "63": {"PH"},
	"64": {"NZ"}, "65": {"SG"}, "66": {"TH"}, "81": {"JP"}, "82": {"KR"}, "84": {"VN"}, "86": {"CN"},
	"90": {"TR"}, "91": {"IN"}, "92": {"PK"}, "94": {"LK"}, "98": {"IR"},
	"212": {"MA"}, "213": {"DZ"}, "216": {"TN"}, "234": {"NG"}, "254": {"KE"},
	"350": {"GI"}, "351": {"PT"}, "352": {"LU"}, "353": {"IE"}, "354": {"IS"}, "355": {"AL"},
	"356": {"MT"}, "357": {"CY"}, "358": {"FI", "AX"}, "359": {"BG"}, "370": {"LT"}, "371": {"LV"},
	"372": {"EE"}, "373": {"MD"}, "374": {"AM"}, "375": {"BY"}, "376": {"AD"}, "377": {"MC"},
	"378": {"SM"}, "380": {"UA"}, "381": {"RS"}, "382": {"ME"}, "383": {"XK"}, "385": {"HR"},
	"386": {"SI"}, "387": {"BA"}, "389": {"MK"}, "420": {"CZ"}, "421": {"SK"}, "423": {"LI"},
	"852": {"HK"}, "886": {"TW"}, "966": {"SA"}, "971": {"AE"}, "972": {"IL"},
}
