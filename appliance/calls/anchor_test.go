package calls

import (
	"net/netip"
	"strings"
	"testing"
)

const phoneOffer = "v=0\r\n" +
	"o=alice 2890844526 2890844526 IN IP4 192.168.1.20\r\n" +
	"s=Yealink\r\n" +
	"c=IN IP4 192.168.1.20\r\n" +
	"t=0 0\r\n" +
	"m=audio 49170 RTP/AVP 0 8 9 101\r\n" +
	"a=rtpmap:0 PCMU/8000\r\n" +
	"a=rtpmap:8 PCMA/8000\r\n" +
	"a=rtpmap:9 G722/8000\r\n" +
	"a=rtpmap:101 telephone-event/8000\r\n" +
	"a=fmtp:101 0-16\r\n" +
	"a=rtcp:49171 IN IP4 192.168.1.20\r\n" +
	"a=candidate:1 1 UDP 2130706431 192.168.1.20 49170 typ host\r\n" +
	"a=ice-ufrag:abcd\r\n" +
	"m=video 51372 RTP/AVP 96\r\n" +
	"c=IN IP4 192.168.1.21\r\n" +
	"a=rtpmap:96 H264/90000\r\n"

func TestSDPRemote(t *testing.T) {
	cases := []struct {
		name string
		sdp  string
		want string // "" for none
	}{
		{"session connection", phoneOffer, "192.168.1.20:49170"},
		{"media connection wins", "v=0\r\nc=IN IP4 10.0.0.1\r\nm=audio 4000 RTP/AVP 0\r\nc=IN IP4 10.0.0.2\r\n", "10.0.0.2:4000"},
		{"ipv6", "v=0\r\nc=IN IP6 2001:db8::1\r\nm=audio 4000 RTP/AVP 0\r\n", "[2001:db8::1]:4000"},
		{"rejected stream", "v=0\r\nc=IN IP4 10.0.0.1\r\nm=audio 0 RTP/AVP 0\r\n", ""},
		{"no audio", "v=0\r\nc=IN IP4 10.0.0.1\r\nm=video 4000 RTP/AVP 96\r\n", ""},
		{"garbage", "not sdp at all", ""},
	}
	for _, tc := range cases {
		got, ok := sdpRemote([]byte(tc.sdp))
		if (tc.want == "") == ok || (ok && got.String() != tc.want) {
			t.Errorf("%s: sdpRemote = %v, %v; want %q", tc.name, got, ok, tc.want)
		}
	}
}

func TestAnchoredSDP(t *testing.T) {
	relay := netip.MustParseAddrPort("10.9.8.7:20002")
	out, err := anchoredSDP([]byte(phoneOffer), relay, []string{"PCMA"}) // DTMF stays without being listed
	if err != nil {
		t.Fatal(err)
	}
	got := string(out)
	for _, leak := range []string{"192.168.1.20", "192.168.1.21", "49170", "49171", "candidate", "ice-ufrag", "PCMU", "G722", "a=rtpmap:0 ", "a=rtpmap:9 "} {
		if strings.Contains(got, leak) {
			t.Errorf("the anchored description still has %q:\n%s", leak, got)
		}
	}
	for _, want := range []string{
		"o=alice 2890844526 2890844526 IN IP4 10.9.8.7\r\n",
		"c=IN IP4 10.9.8.7\r\n",
		"m=audio 20002 RTP/AVP 8 101\r\n",
		"a=rtpmap:8 PCMA/8000\r\n",
		"a=fmtp:101 0-16\r\n",
		"a=rtcp:20003\r\n",
		"m=video 0 RTP/AVP 96\r\n",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("the anchored description lacks %q:\n%s", want, got)
		}
	}
	if remote, ok := sdpRemote(out); !ok || remote != relay {
		t.Errorf("the anchored description points at %v, want the relay %v", remote, relay)
	}
	if _, err := anchoredSDP([]byte(phoneOffer), relay, []string{"G729"}); err == nil {
		t.Error("an offer with none of the trunk's codecs was taken")
	}
	if all, err := anchoredSDP([]byte(phoneOffer), relay, nil); err != nil || !strings.Contains(string(all), "m=audio 20002 RTP/AVP 0 8 9 101") {
		t.Errorf("without a codec list every format stays: %s, %v", all, err)
	}
}

// FuzzAnchoredSDP: any description, anchored, points only at the relay
// (when it has an audio stream at all) and never panics.
func FuzzAnchoredSDP(f *testing.F) {
	f.Add([]byte(phoneOffer), "PCMA")
	f.Add([]byte("v=0\r\nm=audio 1 RTP/AVP\r\nc=IN IP4 1.2.3.4/127\r\n"), "")
	f.Add([]byte("m=audio x y\nc=IN\nm=audio 5 RTP/AVP 0\n"), "PCMU")
	relay := netip.MustParseAddrPort("10.9.8.7:20002")
	f.Fuzz(func(t *testing.T, sdp []byte, codec string) {
		var codecs []string
		if codec != "" {
			codecs = []string{codec}
		}
		out, err := anchoredSDP(sdp, relay, codecs)
		if err != nil {
			return
		}
		if remote, ok := sdpRemote(out); ok && remote != relay {
			t.Fatalf("anchored description points at %v, not the relay:\n%s", remote, out)
		}
	})
}
