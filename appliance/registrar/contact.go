package registrar

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/emiago/sipgo/sip"
)

// contact is one parsed Contact of a REGISTER.
type contact struct {
	uri        sip.Uri
	raw        string // the URI as sent, for the binding and the 200 OK
	expires    int    // the contact's expires parameter, -1 when absent
	instanceID string // RFC 5626 +sip.instance
	regID      int
}

// splitContacts splits a Contact header value on the commas that separate
// contacts (not those inside quotes or <>).
func splitContacts(v string) []string {
	var out []string
	depth, quoted, start := 0, false, 0
	for i := 0; i < len(v); i++ {
		switch c := v[i]; {
		case c == '\\' && quoted:
			i++
		case c == '"':
			quoted = !quoted
		case c == '<' && !quoted:
			depth++
		case c == '>' && !quoted && depth > 0:
			depth--
		case c == ',' && !quoted && depth == 0:
			out = append(out, strings.TrimSpace(v[start:i]))
			start = i + 1
		}
	}
	return append(out, strings.TrimSpace(v[start:]))
}

// parseContacts reads every Contact of a request. wildcard is true for the
// lone "*" of a remove-all request.
func parseContacts(req *sip.Request) (cs []contact, wildcard bool, err error) {
	var values []string
	for _, name := range []string{"Contact", "m"} {
		for _, h := range req.GetHeaders(name) {
			values = append(values, splitContacts(h.Value())...)
		}
	}
	for _, v := range values {
		if v == "" {
			continue
		}
		if v == "*" {
			wildcard = true
			continue
		}
		var c contact
		var params sip.HeaderParams
		if _, err := sip.ParseAddressValue(v, &c.uri, &params); err != nil {
			return nil, false, fmt.Errorf("contact %q: %w", v, err)
		}
		if c.uri.Scheme != "sip" && c.uri.Scheme != "sips" {
			return nil, false, fmt.Errorf("contact %q: only sip and sips URIs can be registered", v)
		}
		c.raw = c.uri.String()
		c.expires = -1
		if e, ok := params.Get("expires"); ok {
			n, err := strconv.ParseUint(e, 10, 32)
			if err != nil {
				return nil, false, fmt.Errorf("contact %q: expires %q is not a number of seconds", v, e)
			}
			c.expires = int(min(n, 1<<31-1))
		}
		if id, ok := params.Get("+sip.instance"); ok {
			c.instanceID = strings.Trim(id, `"<>`)
		}
		if r, ok := params.Get("reg-id"); ok {
			c.regID, _ = strconv.Atoi(r)
		}
		cs = append(cs, c)
	}
	if wildcard && len(cs) > 0 {
		return nil, false, fmt.Errorf("contact * must be the only contact")
	}
	return cs, wildcard, nil
}
