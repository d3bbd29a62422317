package sbc

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/xml"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/outpost-voice/outpost/account"
)

// OutboundCallerID is the caller ID of a normal outbound call: the user's
// first DID, else the site's main number ("" when the site has none either).
func OutboundCallerID(user account.User, site account.Site) string {
	if len(user.Numbers) > 0 && user.Numbers[0] != "" {
		return user.Numbers[0]
	}
	return site.MainNumber
}

// EmergencyCallerID is the caller ID of an emergency call: the ELIN from
// ELINs.Assign; when the site has no ELIN (ErrNoELIN) or the store failed,
// the normal caller ID, because the call goes out regardless.
func EmergencyCallerID(elin string, user account.User, site account.Site) string {
	if elin != "" {
		return elin
	}
	return OutboundCallerID(user, site)
}

// RFC 6442 headers of an emergency INVITE.
const (
	HeaderGeolocation        = "Geolocation"
	HeaderGeolocationRouting = "Geolocation-Routing"
	GeolocationRoutingYes    = "yes" // the location may be used to route the call (to the right PSAP)
)

// GeolocationHeader is the Geolocation header value pointing at the body part
// with contentID (RFC 6442 §4.1): "<cid:contentID>".
func GeolocationHeader(contentID string) string { return "<cid:" + contentID + ">" }

// Location is what a PIDF-LO document says: a site's civic address.
type Location struct {
	Entity  string // presentity URI, e.g. "pres:+16505550190@acme.example"
	TupleID string // default "outpost"
	Address account.Address
	Country string    // used when Address.Country is empty (the site's country)
	Lang    string    // xml:lang of the address, default "en"
	At      time.Time // the document's timestamp
}

// PIDF-LO namespaces.
const (
	nsPIDF  = "urn:ietf:params:xml:ns:pidf"
	nsGP    = "urn:ietf:params:xml:ns:pidf:geopriv10"
	nsGBP   = "urn:ietf:params:xml:ns:pidf:geopriv10:basicPolicy"
	nsCivic = "urn:ietf:params:xml:ns:pidf:geopriv10:civicAddr"
)

// PIDF returns the location as a PIDF-LO document (RFC 4119, civic address
// per RFC 5139 profiled by RFC 5491): a tuple whose status holds the
// geopriv with the civic address, retransmission allowed (the PSAP passes it
// to responders), method Manual (an administrator entered it). It is pure.
func (l Location) PIDF() ([]byte, error) {
	if !strings.Contains(l.Entity, ":") {
		return nil, fmt.Errorf("pidf-lo: entity %q is not a URI; use pres:ELIN@realm", l.Entity)
	}
	ca := civic(l.Address, l.Country)
	if len(ca[0].value) != 2 {
		return nil, fmt.Errorf("pidf-lo: country %q is not an ISO 3166 alpha-2 code; set the site's emergency address country", ca[0].value)
	}
	tuple := l.TupleID
	if tuple == "" {
		tuple = "outpost"
	}
	lang := l.Lang
	if lang == "" {
		lang = "en"
	}
	var b bytes.Buffer
	b.WriteString(xml.Header)
	fmt.Fprintf(&b, `<presence xmlns=%q xmlns:gp=%q xmlns:gbp=%q xmlns:ca=%q entity="%s">`+"\n",
		nsPIDF, nsGP, nsGBP, nsCivic, escape(l.Entity))
	fmt.Fprintf(&b, ` <tuple id="%s">`+"\n  <status>\n   <gp:geopriv>\n    <gp:location-info>\n", escape(xmlID(tuple)))
	fmt.Fprintf(&b, `     <ca:civicAddress xml:lang="%s">`+"\n", escape(lang))
	for _, f := range ca {
		if f.value != "" {
			fmt.Fprintf(&b, "      <ca:%s>%s</ca:%s>\n", f.name, escape(f.value), f.name)
		}
	}
	b.WriteString("     </ca:civicAddress>\n    </gp:location-info>\n")
	b.WriteString("    <gp:usage-rules>\n     <gbp:retransmission-allowed>true</gbp:retransmission-allowed>\n    </gp:usage-rules>\n")
	b.WriteString("    <gp:method>Manual</gp:method>\n   </gp:geopriv>\n  </status>\n")
	fmt.Fprintf(&b, "  <timestamp>%s</timestamp>\n </tuple>\n</presence>\n", l.At.UTC().Format(time.RFC3339))
	return b.Bytes(), nil
}

type civicField struct{ name, value string }

// civic maps an address to RFC 5139 elements, in the schema's order.
func civic(a account.Address, fallbackCountry string) []civicField {
	country := strings.ToUpper(strings.TrimSpace(a.Country))
	if country == "" {
		country = strings.ToUpper(strings.TrimSpace(fallbackCountry))
	}
	s := parseStreet(a.Street, country)
	return []civicField{
		{"country", country}, {"A1", strings.TrimSpace(a.Region)}, {"A3", strings.TrimSpace(a.City)},
		{"PRD", s.prd}, {"RD", s.rd}, {"STS", s.sts}, {"POD", s.pod}, {"HNO", s.hno}, {"HNS", s.hns},
		{"LOC", s.loc}, {"PC", strings.TrimSpace(a.PostalCode)},
	}
}

type street struct{ prd, rd, sts, pod, hno, hns, loc string }

var directionals = map[string]bool{
	"N": true, "S": true, "E": true, "W": true, "NE": true, "NW": true, "SE": true, "SW": true,
	"NORTH": true, "SOUTH": true, "EAST": true, "WEST": true,
}

var streetSuffixes = map[string]bool{
	"ST": true, "STREET": true, "AVE": true, "AVENUE": true, "RD": true, "ROAD": true, "BLVD": true,
	"BOULEVARD": true, "DR": true, "DRIVE": true, "LN": true, "LANE": true, "CT": true, "COURT": true,
	"PL": true, "PLACE": true, "WAY": true, "PKWY": true, "PARKWAY": true, "HWY": true, "HIGHWAY": true,
	"CIR": true, "CIRCLE": true, "TER": true, "TERRACE": true, "SQ": true, "SQUARE": true, "PLZ": true, "PLAZA": true,
}

// parseStreet splits a one-line street as best it can: text after the
// first comma is LOC ("Suite 5"); a leading number ("1 Main St") or, outside
// North America, a trailing one ("Hauptstraße 5") is HNO with its suffix in
// HNS ("12A"); in the US, Canada and Puerto Rico a leading or trailing
// directional is PRD/POD and a known suffix is STS. Anything else stays in RD.
func parseStreet(line, country string) street {
	var s street
	line, s.loc, _ = strings.Cut(line, ",")
	s.loc = strings.TrimSpace(s.loc)
	words := strings.Fields(line)
	northAmerica := country == "US" || country == "CA" || country == "PR"
	switch {
	case len(words) > 1 && isHouseNumber(words[0]):
		s.hno, s.hns = splitHouseNumber(words[0])
		words = words[1:]
	case len(words) > 1 && isHouseNumber(words[len(words)-1]) && !northAmerica:
		s.hno, s.hns = splitHouseNumber(words[len(words)-1])
		words = words[:len(words)-1]
	}
	if northAmerica {
		key := func(w string) string { return strings.ToUpper(strings.TrimSuffix(w, ".")) }
		if len(words) >= 3 && directionals[key(words[0])] {
			s.prd, words = strings.TrimSuffix(words[0], "."), words[1:]
		}
		if len(words) >= 3 && directionals[key(words[len(words)-1])] {
			s.pod, words = strings.TrimSuffix(words[len(words)-1], "."), words[:len(words)-1]
		}
		if len(words) >= 2 && streetSuffixes[key(words[len(words)-1])] {
			s.sts, words = strings.TrimSuffix(words[len(words)-1], "."), words[:len(words)-1]
		}
	}
	s.rd = strings.Join(words, " ")
	return s
}

// isHouseNumber: digits with at most a short suffix ("12", "12A", "12-14"),
// not an ordinal street name ("1st", "42nd").
func isHouseNumber(w string) bool {
	hno, hns := splitHouseNumber(w)
	if hno == "" || len(hns) > 3 {
		return false
	}
	switch strings.ToLower(hns) {
	case "st", "nd", "rd", "th":
		return false
	}
	return true
}

func splitHouseNumber(w string) (hno, hns string) {
	i := 0
	for i < len(w) && w[i] >= '0' && w[i] <= '9' {
		i++
	}
	return w[:i], strings.TrimLeft(w[i:], "-")
}

// xmlID makes s a valid XML ID (NCName): letters, digits, '-', '_' and
// '.', starting with a letter or '_' (prefixed when it does not).
func xmlID(s string) string {
	var b strings.Builder
	letter := func(r rune) bool { return r == '_' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' }
	for i, r := range s {
		if i == 0 && !letter(r) {
			b.WriteByte('_')
		}
		if !letter(r) && r != '-' && r != '.' && (r < '0' || r > '9') {
			r = '_'
		}
		b.WriteRune(r)
	}
	if b.Len() == 0 {
		return "_"
	}
	return b.String()
}

func escape(s string) string {
	var b strings.Builder
	_ = xml.EscapeText(&b, []byte(s)) // strings.Builder never fails
	return b.String()
}

// ErrBadContentID: a Content-ID that cannot go between angle brackets.
var ErrBadContentID = errors.New("bad content id")

// EmergencyBody builds the multipart/mixed body of an emergency INVITE:
// the SDP offer, then the PIDF-LO with Content-ID contentID (which the
// Geolocation header names, see GeolocationHeader). It returns the
// Content-Type header value (with its boundary) and the body. It is pure: the
// boundary is derived from the parts and checked not to occur in them.
func EmergencyBody(sdp, pidf []byte, contentID string) (contentType string, body []byte, err error) {
	if contentID == "" || !strings.Contains(contentID, "@") || strings.ContainsAny(contentID, "<>\" \t\r\n") {
		return "", nil, fmt.Errorf("emergency body: %w %q; use token@host", ErrBadContentID, contentID)
	}
	sum := sha256.Sum256(append(append([]byte{}, sdp...), pidf...))
	boundary := "outpost-" + hex.EncodeToString(sum[:12])
	for bytes.Contains(sdp, []byte(boundary)) || bytes.Contains(pidf, []byte(boundary)) {
		boundary += "x"
	}
	var b bytes.Buffer
	fmt.Fprintf(&b, "--%s\r\nContent-Type: application/sdp\r\n\r\n", boundary)
	b.Write(sdp)
	fmt.Fprintf(&b, "\r\n--%s\r\nContent-Type: application/pidf+xml\r\nContent-ID: <%s>\r\n\r\n", boundary, contentID)
	b.Write(pidf)
	fmt.Fprintf(&b, "\r\n--%s--\r\n", boundary)
	return "multipart/mixed;boundary=" + boundary, b.Bytes(), nil
}
