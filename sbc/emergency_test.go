package sbc

import (
	"bytes"
	"encoding/xml"
	"errors"
	"io"
	"mime"
	"mime/multipart"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/outpost-voice/outpost/account"
)

func TestCallerID(t *testing.T) {
	site := hqSite()
	alice := account.User{ID: "u-alice", Numbers: []string{"+16505550101", "+16505550109"}}
	carol := account.User{ID: "u-carol"}
	noMain := site
	noMain.MainNumber = ""
	for _, tc := range []struct {
		name string
		got  string
		want string
	}{
		{"user with DIDs: the first", OutboundCallerID(alice, site), "+16505550101"},
		{"user without DID: the site's main number", OutboundCallerID(carol, site), "+16505550100"},
		{"neither", OutboundCallerID(carol, noMain), ""},
		{"emergency: the ELIN, even with a DID", EmergencyCallerID(elin2, alice, site), elin2},
		{"emergency without ELIN: the DID", EmergencyCallerID("", alice, site), "+16505550101"},
		{"emergency without ELIN or DID: main number", EmergencyCallerID("", carol, site), "+16505550100"},
	} {
		if tc.got != tc.want {
			t.Errorf("%s: %q, want %q", tc.name, tc.got, tc.want)
		}
	}
}

// pidfDoc reads a PIDF-LO back, namespaces and all.
type pidfDoc struct {
	XMLName xml.Name `xml:"urn:ietf:params:xml:ns:pidf presence"`
	Entity  string   `xml:"entity,attr"`
	Tuple   struct {
		ID     string `xml:"id,attr"`
		Status struct {
			Geopriv struct {
				LocationInfo struct {
					Civic civicDoc `xml:"urn:ietf:params:xml:ns:pidf:geopriv10:civicAddr civicAddress"`
				} `xml:"urn:ietf:params:xml:ns:pidf:geopriv10 location-info"`
				UsageRules struct {
					Retransmission string `xml:"urn:ietf:params:xml:ns:pidf:geopriv10:basicPolicy retransmission-allowed"`
				} `xml:"urn:ietf:params:xml:ns:pidf:geopriv10 usage-rules"`
				Method string `xml:"urn:ietf:params:xml:ns:pidf:geopriv10 method"`
			} `xml:"urn:ietf:params:xml:ns:pidf:geopriv10 geopriv"`
		} `xml:"urn:ietf:params:xml:ns:pidf status"`
		Timestamp string `xml:"urn:ietf:params:xml:ns:pidf timestamp"`
	} `xml:"urn:ietf:params:xml:ns:pidf tuple"`
}

type civicDoc struct {
	Lang    string `xml:"http://www.w3.org/XML/1998/namespace lang,attr"`
	Country string `xml:"country"`
	A1      string `xml:"A1"`
	A3      string `xml:"A3"`
	PRD     string `xml:"PRD"`
	RD      string `xml:"RD"`
	STS     string `xml:"STS"`
	POD     string `xml:"POD"`
	HNO     string `xml:"HNO"`
	HNS     string `xml:"HNS"`
	LOC     string `xml:"LOC"`
	PC      string `xml:"PC"`
}

func TestPIDFLO(t *testing.T) {
	at := time.Date(2025, 3, 1, 12, 0, 0, 0, time.FixedZone("PST", -8*3600))
	loc := Location{Entity: "pres:" + elin1 + "@acme.example", Address: hqSite().Emergency.Address, At: at}
	data, err := loc.PIDF()
	if err != nil {
		t.Fatal(err)
	}
	var doc pidfDoc
	if err := xml.Unmarshal(data, &doc); err != nil {
		t.Fatalf("PIDF-LO does not parse: %v\n%s", err, data)
	}
	g := doc.Tuple.Status.Geopriv
	want := civicDoc{Lang: "en", Country: "US", A1: "CA", A3: "Palo Alto", RD: "Main", STS: "St", HNO: "1", PC: "94301"}
	if got := g.LocationInfo.Civic; got != want {
		t.Errorf("civic address\n got %+v\nwant %+v", got, want)
	}
	if doc.Entity != "pres:+16505550190@acme.example" || doc.Tuple.ID != "outpost" || g.Method != "Manual" ||
		g.UsageRules.Retransmission != "true" || doc.Tuple.Timestamp != "2025-03-01T20:00:00Z" {
		t.Errorf("document = %+v\n%s", doc, data)
	}
	if got, want := civicOrder(t, data), []string{"country", "A1", "A3", "RD", "STS", "HNO", "PC"}; !slices.Equal(got, want) {
		t.Errorf("civic elements in order %v, want the RFC 5139 schema order %v", got, want)
	}
}

// civicOrder lists the civicAddress children in document order.
func civicOrder(t *testing.T, data []byte) []string {
	t.Helper()
	dec := xml.NewDecoder(bytes.NewReader(data))
	var out []string
	depth := -1
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		switch el := tok.(type) {
		case xml.StartElement:
			if el.Name.Local == "civicAddress" {
				depth = 0
			} else if depth >= 0 {
				if depth == 0 {
					if el.Name.Space != nsCivic {
						t.Errorf("%s in namespace %q", el.Name.Local, el.Name.Space)
					}
					out = append(out, el.Name.Local)
				}
				depth++
			}
		case xml.EndElement:
			if el.Name.Local == "civicAddress" {
				depth = -1
			} else if depth > 0 {
				depth--
			}
		}
	}
}

func TestPIDFLOEscapesAndFallsBack(t *testing.T) {
	loc := Location{
		Entity:  `pres:x@acme.example?a=1&b="2"`,
		TupleID: "9 site<hq>",
		Address: account.Address{Street: "Rue <du> Lac & Cie 12b", City: "Genève", Region: "GE", PostalCode: "1201"},
		Country: "ch", Lang: "fr",
	}
	data, err := loc.PIDF()
	if err != nil {
		t.Fatal(err)
	}
	var doc pidfDoc
	if err := xml.Unmarshal(data, &doc); err != nil {
		t.Fatalf("does not parse: %v\n%s", err, data)
	}
	c := doc.Tuple.Status.Geopriv.LocationInfo.Civic
	if c.Country != "CH" || c.RD != "Rue <du> Lac & Cie" || c.HNO != "12" || c.HNS != "b" || c.A3 != "Genève" || c.Lang != "fr" {
		t.Errorf("civic = %+v", c)
	}
	if doc.Entity != loc.Entity || doc.Tuple.ID != "_9_site_hq_" {
		t.Errorf("entity %q tuple %q", doc.Entity, doc.Tuple.ID)
	}
	if _, err := (Location{Entity: "pres:x@y", Address: account.Address{City: "Nowhere"}}).PIDF(); err == nil {
		t.Error("no country accepted")
	}
	if _, err := (Location{Entity: "carol", Address: hqSite().Emergency.Address}).PIDF(); err == nil {
		t.Error("an entity that is not a URI accepted")
	}
}

func TestParseStreet(t *testing.T) {
	for _, tc := range []struct {
		line, country string
		want          street
	}{
		{"1 Main St", "US", street{rd: "Main", sts: "St", hno: "1"}},
		{"200 Lake St, Suite 5", "US", street{rd: "Lake", sts: "St", hno: "200", loc: "Suite 5"}},
		{"1600 N. Pennsylvania Ave NW", "US", street{prd: "N", rd: "Pennsylvania", sts: "Ave", pod: "NW", hno: "1600"}},
		{"12A Elm Street", "US", street{rd: "Elm", sts: "Street", hno: "12", hns: "A"}},
		{"North Ave", "US", street{rd: "North", sts: "Ave"}},
		{"1st Street", "US", street{rd: "1st", sts: "Street"}},
		{"100 1st Ave", "US", street{rd: "1st", sts: "Ave", hno: "100"}},
		{"Broadway", "US", street{rd: "Broadway"}},
		{"Hauptstraße 5", "DE", street{rd: "Hauptstraße", hno: "5"}},
		{"10 Downing Street", "GB", street{rd: "Downing Street", hno: "10"}},
		{"Calle Mayor 12-14", "ES", street{rd: "Calle Mayor", hno: "12", hns: "14"}},
		{"Main St 5", "US", street{rd: "Main St 5"}},
		{"", "US", street{}},
		{"  ", "GB", street{}},
	} {
		if got := parseStreet(tc.line, tc.country); got != tc.want {
			t.Errorf("parseStreet(%q, %s) = %+v, want %+v", tc.line, tc.country, got, tc.want)
		}
	}
}

func TestEmergencyBody(t *testing.T) {
	sdp := []byte("v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=-\r\nc=IN IP4 192.0.2.1\r\nt=0 0\r\nm=audio 20000 RTP/AVP 0\r\n")
	pidf, err := Location{Entity: "pres:" + elin1 + "@acme.example", Address: hqSite().Emergency.Address}.PIDF()
	if err != nil {
		t.Fatal(err)
	}
	const cid = "loc-7f3a@node-1.acme.example"
	ct, body, err := EmergencyBody(sdp, pidf, cid)
	if err != nil {
		t.Fatal(err)
	}
	if got := GeolocationHeader(cid); got != "<cid:loc-7f3a@node-1.acme.example>" {
		t.Errorf("Geolocation = %q", got)
	}
	mt, params, err := mime.ParseMediaType(ct)
	if err != nil || mt != "multipart/mixed" || params["boundary"] == "" {
		t.Fatalf("Content-Type %q: %v", ct, err)
	}
	r := multipart.NewReader(bytes.NewReader(body), params["boundary"])
	var parts []struct {
		ctype, cid string
		data       []byte
	}
	for {
		p, err := r.NextRawPart()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("body does not parse: %v\n%s", err, body)
		}
		data, err := io.ReadAll(p)
		if err != nil {
			t.Fatal(err)
		}
		parts = append(parts, struct {
			ctype, cid string
			data       []byte
		}{p.Header.Get("Content-Type"), p.Header.Get("Content-ID"), data})
	}
	if len(parts) != 2 {
		t.Fatalf("%d parts, want 2", len(parts))
	}
	if parts[0].ctype != "application/sdp" || !bytes.Equal(parts[0].data, sdp) {
		t.Errorf("part 1: %q %q", parts[0].ctype, parts[0].data)
	}
	if parts[1].ctype != "application/pidf+xml" || parts[1].cid != "<"+cid+">" || !bytes.Equal(parts[1].data, pidf) {
		t.Errorf("part 2: %q %q", parts[1].ctype, parts[1].cid)
	}
	if !bytes.HasSuffix(body, []byte("--\r\n")) || !strings.Contains(string(body), "\r\nContent-ID: <"+cid+">\r\n") {
		t.Errorf("framing:\n%s", body)
	}
	ct2, body2, _ := EmergencyBody(sdp, pidf, cid)
	if ct2 != ct || !bytes.Equal(body2, body) {
		t.Error("not deterministic")
	}

	for _, bad := range []string{"", "nohost", "<a@b>", "a b@c", "a@b\r\nX: y"} {
		if _, _, err := EmergencyBody(sdp, pidf, bad); !errors.Is(err, ErrBadContentID) {
			t.Errorf("content id %q: %v, want ErrBadContentID", bad, err)
		}
	}
}

func TestEmergencyBodyBoundaryNotInParts(t *testing.T) {
	sdp := []byte("v=0\r\n")
	pidf := []byte("<x/>")
	_, body, err := EmergencyBody(sdp, pidf, "a@b")
	if err != nil {
		t.Fatal(err)
	}
	boundary := strings.TrimPrefix(strings.SplitN(string(body), "\r\n", 2)[0], "--")
	// An SDP that contains that boundary forces another one.
	sdp2 := []byte("v=0\r\ns=" + boundary + "\r\n")
	ct, body2, err := EmergencyBody(sdp2, pidf, "a@b")
	if err != nil {
		t.Fatal(err)
	}
	_, params, _ := mime.ParseMediaType(ct)
	if bytes.Contains(sdp2, []byte(params["boundary"])) {
		t.Errorf("boundary %q occurs in the SDP", params["boundary"])
	}
	if !bytes.Contains(body2, sdp2) {
		t.Error("SDP missing")
	}
}
