package registrar

import (
	"bytes"
	"net"
	"testing"

	"github.com/emiago/sipgo/sip"
)

func TestDropScanners(t *testing.T) {
	register := func(headers string) string {
		return "REGISTER sip:acme.example SIP/2.0\r\n" +
			"Via: SIP/2.0/UDP 203.0.113.9:5070;branch=z9hG4bK-1\r\n" +
			"From: <sip:100@acme.example>;tag=1\r\nTo: <sip:100@acme.example>\r\n" +
			"Call-ID: scan-1\r\nCSeq: 1 REGISTER\r\n" + headers + "Content-Length: 0\r\n\r\n"
	}
	tests := []struct {
		name string
		data string
		drop bool
	}{
		{"friendly-scanner", register("User-Agent: friendly-scanner\r\n"), true},
		{"sipvicious lower-case header", register("user-agent: sipvicious\r\n"), true},
		{"SIPVicious capitals", register("USER-AGENT: SIPVicious 0.3.4\r\n"), true},
		{"mixed-case header and value", register("User-agent: Friendly-Scanner/1.0\r\n"), true},
		{"no space", register("User-Agent:sipcli/v1.8\r\n"), true},
		{"tab", register("User-Agent:\tsip-scan\r\n"), true},
		{"within a longer name", register("User-Agent: VaxSIPUserAgent/3.1\r\n"), true},
		{"pplsip", register("User-Agent: pplsip\r\n"), true},
		{"iWar", register("User-Agent: iWar\r\n"), true},
		{"sivus", register("User-Agent: SIVuS\r\n"), true},
		{"sundayddr", register("User-Agent: sundayddr worm\r\n"), true},
		{"LF line ends", "OPTIONS sip:100@192.0.2.1 SIP/2.0\nVia: SIP/2.0/UDP 203.0.113.9\nUser-Agent: friendly-scanner\n\n", true},
		{"first line only, no CRLF", "User-Agent: friendly-scanner", true},
		{"Yealink", register("User-Agent: Yealink SIP-T54W 96.86.0.70\r\n"), false},
		{"Polycom", register("User-Agent: PolycomVVX-VVX_450-UA/6.4.0.1234\r\n"), false},
		{"baresip", register("User-Agent: baresip v3.10.1 (x86_64/linux)\r\n"), false},
		{"no User-Agent", register(""), false},
		{"Server is not User-Agent", register("Server: friendly-scanner\r\n"), false},
		{"X-User-Agent is not User-Agent", register("X-User-Agent: friendly-scanner\r\n"), false},
		{"in the Subject", register("Subject: friendly-scanner\r\n"), false},
		{"in the body", "MESSAGE sip:100@acme.example SIP/2.0\r\nUser-Agent: baresip\r\nContent-Length: 31\r\n\r\nUser-Agent: friendly-scanner\r\n", false},
		{"body only after headers", "MESSAGE sip:100@acme.example SIP/2.0\r\nContent-Length: 31\r\n\r\nUser-Agent: friendly-scanner\r\n", false},
		{"User-Agent name alone", "User-Agent:", false},
		{"empty", "", false},
		{"keep-alive", "\r\n\r\n", false},
		{"binary", "\x00\x01\x02user-agent: friendly-scanner", false},
	}
	props := sip.TransportReadProps{Transport: "udp", RemoteAddr: &net.UDPAddr{IP: net.ParseIP("203.0.113.9"), Port: 5070}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			data := []byte(tt.data)
			got, err := DropScanners(props, data)
			if err != nil {
				// sipgo stops the listener on a filter error.
				t.Fatalf("error %v: a filter must never fail", err)
			}
			if tt.drop {
				if got != nil {
					t.Errorf("passed %q, want it dropped (nil)", got)
				}
				return
			}
			if !bytes.Equal(got, []byte(tt.data)) || (len(data) > 0 && &got[0] != &data[0]) {
				t.Errorf("got %q, want the input unchanged and uncopied", got)
			}
		})
	}
}

func FuzzDropScanners(f *testing.F) {
	f.Add([]byte("REGISTER sip:a SIP/2.0\r\nUser-Agent: friendly-scanner\r\n\r\n"))
	f.Add([]byte("OPTIONS sip:a SIP/2.0\r\nuser-agent: Yealink\r\n\r\n"))
	f.Add([]byte("\r\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		in := bytes.Clone(data)
		got, err := DropScanners(sip.TransportReadProps{}, data)
		if err != nil {
			t.Fatalf("error %v", err)
		}
		if got != nil && !bytes.Equal(got, in) {
			t.Fatalf("changed the data: %q to %q", in, got)
		}
		if !bytes.Equal(data, in) {
			t.Fatalf("modified its input")
		}
	})
}

// RFC 3261 allows whitespace before a header's colon (HCOLON), and sipgo
// parses "User-Agent : x" as a User-Agent: the filter must see it too, or a
// scanner evades it with one space.
func TestDropScannersSpaceBeforeColon(t *testing.T) {
	for _, ua := range []string{"User-Agent : friendly-scanner", "User-Agent\t: sipvicious", "user-agent  :sipcli"} {
		data := []byte("OPTIONS sip:100@192.0.2.1 SIP/2.0\r\nVia: SIP/2.0/UDP 203.0.113.9;branch=z9hG4bK-1\r\n" +
			ua + "\r\nContent-Length: 0\r\n\r\n")
		msg, err := sip.ParseMessage(data)
		if err != nil {
			t.Fatalf("%q: sipgo does not parse it: %v", ua, err)
		}
		if h := msg.(*sip.Request).GetHeader("User-Agent"); h == nil {
			t.Fatalf("%q: sipgo does not see a User-Agent", ua)
		}
		if got, err := DropScanners(sip.TransportReadProps{}, data); got != nil || err != nil {
			t.Errorf("%q: passed (err %v), want it dropped", ua, err)
		}
	}
}
