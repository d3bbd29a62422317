package registrar

import (
	"slices"
	"strings"
	"testing"
)

func TestSplitContacts(t *testing.T) {
	tests := []struct {
		in   string
		want []string
	}{
		{"", []string{""}},
		{"*", []string{"*"}},
		{"<sip:a@x>", []string{"<sip:a@x>"}},
		{"<sip:a@x>,<sip:b@y>", []string{"<sip:a@x>", "<sip:b@y>"}},
		{" <sip:a@x> ,\t<sip:b@y> , <sip:c@z> ", []string{"<sip:a@x>", "<sip:b@y>", "<sip:c@z>"}},
		{"sip:a@x;expires=60, sip:b@y", []string{"sip:a@x;expires=60", "sip:b@y"}},
		{`"Smith, John" <sip:a@x>, <sip:b@y>`, []string{`"Smith, John" <sip:a@x>`, "<sip:b@y>"}},
		{`"a \"quoted, name\"" <sip:a@x>,<sip:b@y>`, []string{`"a \"quoted, name\"" <sip:a@x>`, "<sip:b@y>"}},
		{`"back\\slash" <sip:a@x>, <sip:b@y>`, []string{`"back\\slash" <sip:a@x>`, "<sip:b@y>"}},
		{`"<not, a uri>" <sip:a@x>, <sip:b@y>`, []string{`"<not, a uri>" <sip:a@x>`, "<sip:b@y>"}},
		{"<sip:a@x;foo=1,2>, <sip:b@y>", []string{"<sip:a@x;foo=1,2>", "<sip:b@y>"}},
		{"<sip:a@x?subject=a,b>;expires=60, <sip:b@y>", []string{"<sip:a@x?subject=a,b>;expires=60", "<sip:b@y>"}},
		{`<sip:a@x>;+sip.instance="<urn:uuid:1,2>";reg-id=1, <sip:b@y>`,
			[]string{`<sip:a@x>;+sip.instance="<urn:uuid:1,2>";reg-id=1`, "<sip:b@y>"}},
		{`<sip:a@x>;note="a, b", <sip:b@y>`, []string{`<sip:a@x>;note="a, b"`, "<sip:b@y>"}},
		{"a, , b", []string{"a", "", "b"}},
		{"a,", []string{"a", ""}},
		{",a", []string{"", "a"}},
		{"<sip:a@x, <sip:b@y>", []string{"<sip:a@x, <sip:b@y>"}}, // unbalanced: one
		{"a>, b", []string{"a>", "b"}},                           // stray >
		{`"unterminated, <sip:a@x>, <sip:b@y>`, []string{`"unterminated, <sip:a@x>, <sip:b@y>`}},
		{`"trailing backslash\`, []string{`"trailing backslash\`}},
	}
	for _, tt := range tests {
		if got := splitContacts(tt.in); !slices.Equal(got, tt.want) {
			t.Errorf("splitContacts(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestParseContacts(t *testing.T) {
	// got is a contact without its parsed URI.
	type got struct {
		raw        string
		expires    int
		instanceID string
		regID      int
	}
	tests := []struct {
		name     string
		headers  []string // header lines
		want     []got
		wildcard bool
		err      string // substring of the error; "" for none
	}{
		{"none", nil, nil, false, ""},
		{"one", []string{"Contact: <sip:alice@192.0.2.10:5060>"},
			[]got{{"sip:alice@192.0.2.10:5060", -1, "", 0}}, false, ""},
		{"no angle brackets", []string{"Contact: sip:alice@192.0.2.10:5060;expires=60"},
			[]got{{"sip:alice@192.0.2.10:5060", 60, "", 0}}, false, ""},
		{"display name", []string{`Contact: "Alice Desk" <sip:alice@192.0.2.10:5060>;expires=600`},
			[]got{{"sip:alice@192.0.2.10:5060", 600, "", 0}}, false, ""},
		{"URI parameters stay in the URI", []string{"Contact: <sip:alice@192.0.2.10:5060;transport=tcp;ob>;expires=600"},
			[]got{{"sip:alice@192.0.2.10:5060;transport=tcp;ob", 600, "", 0}}, false, ""},
		{"sips", []string{"Contact: <sips:alice@192.0.2.10:5061>"},
			[]got{{"sips:alice@192.0.2.10:5061", -1, "", 0}}, false, ""},
		{"scheme in capitals", []string{"Contact: <SIP:alice@192.0.2.10:5060>"},
			[]got{{"sip:alice@192.0.2.10:5060", -1, "", 0}}, false, ""},
		{"expires 0", []string{"Contact: <sip:alice@192.0.2.10>;expires=0"},
			[]got{{"sip:alice@192.0.2.10", 0, "", 0}}, false, ""},
		{"largest expires is clamped", []string{"Contact: <sip:alice@192.0.2.10>;expires=4294967295"},
			[]got{{"sip:alice@192.0.2.10", 1<<31 - 1, "", 0}}, false, ""},
		{"instance and reg-id", []string{`Contact: <sip:alice@192.0.2.10:5060;ob>;+sip.instance="<urn:uuid:00000000-0000-1000-8000-000A95A0E128>";reg-id=2`},
			[]got{{"sip:alice@192.0.2.10:5060;ob", -1, "urn:uuid:00000000-0000-1000-8000-000A95A0E128", 2}}, false, ""},
		{"bad reg-id is 0", []string{`Contact: <sip:alice@192.0.2.10>;+sip.instance="<urn:uuid:1>";reg-id=x`},
			[]got{{"sip:alice@192.0.2.10", -1, "urn:uuid:1", 0}}, false, ""},
		{"several in one header", []string{`Contact: "Desk, left" <sip:alice@192.0.2.10:5060>, <sip:alice@192.0.2.10:5062>;expires=60`},
			[]got{{"sip:alice@192.0.2.10:5060", -1, "", 0}, {"sip:alice@192.0.2.10:5062", 60, "", 0}}, false, ""},
		{"several headers and compact form", []string{"Contact: <sip:alice@192.0.2.10:5060>", "m: <sip:alice@192.0.2.10:5062>", "CONTACT: <sip:alice@192.0.2.10:5064>"},
			[]got{{"sip:alice@192.0.2.10:5060", -1, "", 0}, {"sip:alice@192.0.2.10:5062", -1, "", 0}, {"sip:alice@192.0.2.10:5064", -1, "", 0}}, false, ""},
		{"wildcard", []string{"Contact: *"}, nil, true, ""},
		{"wildcard compact", []string{"m: *"}, nil, true, ""},
		{"wildcard twice", []string{"Contact: *", "Contact: *"}, nil, true, ""},
		{"wildcard then contact", []string{"Contact: *", "Contact: <sip:alice@192.0.2.10>"}, nil, false, "contact * must be the only contact"},
		{"contact then wildcard", []string{"Contact: <sip:alice@192.0.2.10>", "Contact: *"}, nil, false, "contact * must be the only contact"},
		{"tel", []string{"Contact: <tel:+16505550101>"}, nil, false, "only sip and sips URIs can be registered"},
		{"urn", []string{"Contact: <urn:uuid:00000000-0000-1000-8000-000A95A0E128>"}, nil, false, "only sip and sips URIs can be registered"},
		{"expires not a number", []string{"Contact: <sip:alice@192.0.2.10>;expires=soon"}, nil, false, `expires "soon" is not a number of seconds`},
		{"expires negative", []string{"Contact: <sip:alice@192.0.2.10>;expires=-1"}, nil, false, `expires "-1" is not a number of seconds`},
		{"expires beyond 32 bits", []string{"Contact: <sip:alice@192.0.2.10>;expires=4294967296"}, nil, false, `is not a number of seconds`},
		{"expires empty", []string{"Contact: <sip:alice@192.0.2.10>;expires="}, nil, false, `is not a number of seconds`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := parseRequest(t, regMsg{extra: tt.headers}.String())
			cs, wildcard, err := parseContacts(req)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("error %v, want one with %q", err, tt.err)
				}
				if cs != nil || wildcard {
					t.Errorf("on error: %v, %v; want nil, false", cs, wildcard)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if wildcard != tt.wildcard {
				t.Errorf("wildcard = %v, want %v", wildcard, tt.wildcard)
			}
			var gots []got
			for _, c := range cs {
				gots = append(gots, got{c.raw, c.expires, c.instanceID, c.regID})
				if c.raw != c.uri.String() {
					t.Errorf("raw %q is not the URI %q", c.raw, c.uri.String())
				}
			}
			if !slices.Equal(gots, tt.want) {
				t.Errorf("contacts %+v, want %+v", gots, tt.want)
			}
		})
	}
}

// bindingID is stable for a device: its instance-id and reg-id when it
// sends them, else its contact URI; and never shared between AORs.
func TestBindingID(t *testing.T) {
	byURI := func(raw string) contact { return contact{raw: raw} }
	byInst := func(raw, inst string, regID int) contact { return contact{raw: raw, instanceID: inst, regID: regID} }
	const inst = "urn:uuid:00000000-0000-1000-8000-000A95A0E128"
	tests := []struct {
		name       string
		aor1, aor2 string
		c1, c2     contact
		same       bool
	}{
		{"same URI", aliceAOR, aliceAOR, byURI("sip:a@192.0.2.10"), byURI("sip:a@192.0.2.10"), true},
		{"other URI", aliceAOR, aliceAOR, byURI("sip:a@192.0.2.10"), byURI("sip:a@192.0.2.11"), false},
		{"same URI other AOR", aliceAOR, "bob@acme.example", byURI("sip:a@192.0.2.10"), byURI("sip:a@192.0.2.10"), false},
		{"same instance new URI", aliceAOR, aliceAOR, byInst("sip:a@192.0.2.10", inst, 1), byInst("sip:a@198.51.100.4", inst, 1), true},
		{"same instance other reg-id", aliceAOR, aliceAOR, byInst("sip:a@192.0.2.10", inst, 1), byInst("sip:a@192.0.2.10", inst, 2), false},
		{"same instance other AOR", aliceAOR, "bob@acme.example", byInst("sip:a@192.0.2.10", inst, 1), byInst("sip:a@192.0.2.10", inst, 1), false},
		{"instance or not", aliceAOR, aliceAOR, byInst("sip:a@192.0.2.10", inst, 0), byURI("sip:a@192.0.2.10"), false},
		{"no confusion across the separator", "a@x", "a@x", byURI("b|c"), byInst("", "b|c", 0), false},
	}
	for _, tt := range tests {
		id1, id2 := bindingID(tt.aor1, tt.c1), bindingID(tt.aor2, tt.c2)
		if (id1 == id2) != tt.same {
			t.Errorf("%s: ids %s and %s, want same=%v", tt.name, id1, id2, tt.same)
		}
	}
}
