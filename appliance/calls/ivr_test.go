package calls

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/outpost-voice/outpost/appliance/media/g711"
)

func TestIVRFormats(t *testing.T) {
	offer := func(m string, attrs ...string) []byte {
		return []byte("v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=-\r\nc=IN IP4 192.0.2.1\r\nt=0 0\r\nm=audio 4000 RTP/AVP " + m + "\r\n" +
			strings.Join(attrs, "\r\n") + "\r\n")
	}
	for _, tc := range []struct {
		name   string
		offer  []byte
		codecs []string
		codec  g711.Codec
		pt     uint8
		ok     bool
	}{
		{"pcmu first, events 101", offer("0 8 101", "a=rtpmap:101 telephone-event/8000"), nil, g711.PCMU, 101, true},
		{"the offer's order wins", offer("8 0 96", "a=rtpmap:96 telephone-event/8000"), nil, g711.PCMA, 96, true},
		{"a trunk's codecs filter", offer("0 8", ""), []string{"PCMA"}, g711.PCMA, 0, true},
		{"a trunk's codecs by number", offer("0 8", ""), []string{"8"}, g711.PCMA, 0, true},
		{"G.722 then PCMU", offer("9 0", ""), nil, g711.PCMU, 0, true},
		{"no G.711", offer("9 18", ""), nil, 0, 0, false},
		{"events at 16 kHz are not ours", offer("0 101", "a=rtpmap:101 telephone-event/16000"), nil, g711.PCMU, 0, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			codec, pt, ok := ivrFormats(tc.offer, tc.codecs)
			if ok != tc.ok || (ok && (codec != tc.codec || pt != tc.pt)) {
				t.Errorf("ivrFormats = %v, %d, %v; want %v, %d, %v", codec, pt, ok, tc.codec, tc.pt, tc.ok)
			}
		})
	}
}

func TestIVRAnswer(t *testing.T) {
	sdp := string(ivrAnswer(netip.MustParseAddrPort("10.0.0.5:20000"), g711.PCMA, 101))
	for _, want := range []string{"c=IN IP4 10.0.0.5\r\n", "m=audio 20000 RTP/AVP 8 101\r\n", "a=rtpmap:8 PCMA/8000\r\n",
		"a=rtpmap:101 telephone-event/8000\r\n", "a=fmtp:101 0-16\r\n", "a=sendrecv\r\n"} {
		if !strings.Contains(sdp, want) {
			t.Errorf("answer lacks %q:\n%s", want, sdp)
		}
	}
	if remote, ok := sdpRemote([]byte(sdp)); !ok || remote != netip.MustParseAddrPort("10.0.0.5:20000") {
		t.Errorf("the answer reads back as %v, %v", remote, ok)
	}
	plain := string(ivrAnswer(netip.MustParseAddrPort("[2001:db8::5]:20002"), g711.PCMU, 0))
	if !strings.Contains(plain, "c=IN IP6 2001:db8::5\r\n") || !strings.Contains(plain, "m=audio 20002 RTP/AVP 0\r\n") ||
		strings.Contains(plain, "telephone-event") {
		t.Errorf("IPv6 answer without events:\n%s", plain)
	}
}
