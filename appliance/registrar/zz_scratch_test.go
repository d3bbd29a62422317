package registrar

import (
	"fmt"
	"strings"
	"testing"

	"github.com/emiago/sipgo/sip"
)

func TestZZScratch(t *testing.T) {
	for _, c := range []string{
		"*",
		"<sip:a@192.0.2.1:5060>;expires=60, <sip:b@192.0.2.2>",
		`"Al, ice" <sip:a@192.0.2.1>;+sip.instance="<urn:uuid:00000000-0000-1000-8000-000A95A0E128>";reg-id=1`,
		"<tel:+16505550101>",
		"<mailto:a@b>",
		"* , <sip:a@b>",
		"<sip:a@b>;expires=abc",
		"sip:a@b;expires=60",
	} {
		raw := "REGISTER sip:acme.example SIP/2.0\r\nVia: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bK1\r\nTo: <sip:alice@acme.example>\r\nFrom: <sip:alice@acme.example>;tag=1\r\nCall-ID: c1\r\nCSeq: 1 REGISTER\r\nContact: " + c + "\r\nm: <sip:m@x>\r\nContent-Length: 0\r\n\r\n"
		m, err := sip.ParseMessage([]byte(raw))
		if err != nil {
			fmt.Println(c, "PARSE ERR", err)
			continue
		}
		req := m.(*sip.Request)
		var vs []string
		for _, h := range req.GetHeaders("Contact") {
			vs = append(vs, h.Value())
		}
		cs, w, err := parseContacts(req)
		fmt.Printf("%q -> %q | %+v %v %v | src=%s tp=%s\n", c, strings.Join(vs, " || "), cs, w, err, req.Source(), req.Transport())
	}
}
