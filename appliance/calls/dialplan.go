package calls

import (
	"strings"

	"github.com/outpost-voice/outpost/account"
)

// Destination kinds a dialled string resolves to.
const (
	DestUser      = "user"      // a user of the account, by extension or DID
	DestSDG       = "sdg"       // a Survivability Distribution Group
	DestNumber    = "number"    // a numbers[] entry, routed by its own route
	DestExternal  = "external"  // a number outside the account: the site's trunks
	DestEmergency = "emergency" // a site emergency number: always out, ELIN caller ID
	DestInvalid   = "invalid"   // nothing dialable
)

// Target is what an extension or account number reaches (the store's
// dial index, seen through Plan).
type Target struct {
	Kind string // DestUser, DestSDG or DestNumber
	ID   string
}

// Plan is the read-only view of the configuration a dialling decision needs.
type Plan interface {
	// Lookup finds an extension or an E.164 account number.
	Lookup(dial string) (Target, bool)
	// Site returns a site's settings.
	Site(id string) (account.Site, bool)
}

// Dial is one dialling request: who calls (their site) and what they dialled.
type Dial struct {
	CallerSite string
	Digits     string // the Request-URI user part as the phone sent it
	// Features are the node's feature codes (features.go), matched first.
	Features []FeatureCode
}

// Destination is the decision: where the call goes and, for calls leaving
// the account, the number in E.164.
type Destination struct {
	Kind   string
	ID     string // user, SDG or numbers[] entry, for internal kinds
	Number string // E.164 for external calls; the dial string as dialled for emergency
	Reason string // why, for DestInvalid
}

// Resolve applies the dialling rules of shared/CONTRACT.md. It is pure: the
// plan is the only input besides the request.
//
//   - A star code (starCodes: *97 voicemail) is a feature of the node.
//   - A site emergency number of the caller's site goes out as dialled.
//   - An extension (users' and SDGs') rings that user or SDG, at any site.
//   - A number of the account is routed internally, never to a trunk.
//   - Any other number goes out through the caller's site's trunks; 10- and
//     7-digit numbers are completed with the site's country and area code.
func Resolve(d Dial, p Plan) Destination {
	digits := normalizeDialString(d.Digits)
	if digits == "" {
		return Destination{Kind: DestInvalid, Reason: "nothing dialled"}
	}
	if f, ok := resolveFeature(digits, d.Features); ok {
		return f
	}
	site, haveSite := p.Site(d.CallerSite)
	if haveSite {
		for _, e := range site.Emergency.Numbers {
			if digits == e {
				return Destination{Kind: DestEmergency, Number: e}
			}
		}
	}
	if t, ok := p.Lookup(digits); ok {
		return internal(t)
	}
	e164, ok := toE164(digits, site, haveSite)
	if !ok {
		return Destination{Kind: DestInvalid, Reason: "not an extension of the account and not a dialable number"}
	}
	if t, ok := p.Lookup(e164); ok {
		return internal(t)
	}
	return Destination{Kind: DestExternal, Number: e164}
}

func internal(t Target) Destination {
	return Destination{Kind: t.Kind, ID: t.ID}
}

// normalizeDialString drops the visual separators phones and people put in
// numbers ("+1 (650) 555-0101"), keeping digits, a leading +, * and #.
func normalizeDialString(s string) string {
	var b strings.Builder
	for i, r := range strings.TrimSpace(s) {
		switch {
		case r >= '0' && r <= '9', r == '*', r == '#':
			b.WriteRune(r)
		case r == '+' && i == 0:
			b.WriteRune(r)
		case r == ' ', r == '-', r == '.', r == '(', r == ')':
		default:
			return "" // a letter or other symbol: not a dial string
		}
	}
	return b.String()
}

// toE164 completes a dialled number with the caller's site's country and
// area code: "+…" as is, 00/011 international prefixes, national numbers
// with a trunk prefix, 10-digit (NANP) and 7-digit local numbers.
func toE164(digits string, site account.Site, haveSite bool) (string, bool) {
	if strings.ContainsAny(digits, "*#") {
		return "", false
	}
	var out string
	cc := ""
	if haveSite {
		cc = callingCode[site.Country]
	}
	switch {
	case strings.HasPrefix(digits, "+"):
		out = digits
	case strings.HasPrefix(digits, "011") && cc == "1":
		out = "+" + digits[3:]
	case strings.HasPrefix(digits, "00") && cc != "1":
		out = "+" + digits[2:]
	case cc == "1" && len(digits) == 11 && digits[0] == '1':
		out = "+" + digits
	case cc == "1" && len(digits) == 10:
		out = "+1" + digits
	case cc == "1" && len(digits) == 7 && site.AreaCode != "":
		out = "+1" + site.AreaCode + digits
	case cc != "" && cc != "1" && len(digits) > 1 && digits[0] == '0':
		out = "+" + cc + digits[1:] // national number with trunk prefix 0
	default:
		return "", false
	}
	if !isE164(out) {
		return "", false
	}
	return out, true
}

func isE164(s string) bool {
	if len(s) < 3 || len(s) > 16 || s[0] != '+' || s[1] == '0' {
		return false
	}
	for _, r := range s[1:] {
		if r < '0' || r > '9' {
			return false
		}
	}
	return true
}

// callingCode maps ISO 3166 alpha-2 countries to their ITU calling codes
// (the sites an account is likely to have; others dial in E.164).
var callingCode = map[string]string{
	"US": "1", "CA": "1", "PR": "1", "GB": "44", "IE": "353", "DE": "49", "FR": "33",
	"ES": "34", "IT": "39", "NL": "31", "BE": "32", "CH": "41", "AT": "43", "SE": "46",
	"NO": "47", "DK": "45", "FI": "358", "PL": "48", "PT": "351", "AU": "61", "NZ": "64",
	"JP": "81", "SG": "65", "IN": "91", "BR": "55", "MX": "52", "ZA": "27", "IL": "972",
}
