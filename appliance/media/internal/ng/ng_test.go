package ng

import (
	"net/netip"
	"reflect"
	"testing"
)

func TestBencodeRoundTrip(t *testing.T) {
	in := Dict{"command": "offer", "n": int64(-42), "flags": []any{"a", "bc"}, "sub": Dict{"x": ""}}
	b, err := Encode(in)
	if err != nil {
		t.Fatal(err)
	}
	if want := "d7:command5:offer5:flagsl1:a2:bce1:ni-42e3:subd1:x0:ee"; string(b) != want {
		t.Errorf("Encode = %s, want %s", b, want)
	}
	out, rest, err := Decode(b)
	if err != nil || len(rest) != 0 {
		t.Fatalf("Decode: %v, rest %q", err, rest)
	}
	if !reflect.DeepEqual(out, any(in)) {
		t.Errorf("round trip %#v != %#v", out, in)
	}
	for _, bad := range []string{"", "d", "i12", "5:abc", "l", "di1ei2ee", "x"} {
		if _, _, err := Decode([]byte(bad)); err == nil {
			t.Errorf("Decode(%q) accepted", bad)
		}
	}
}

func TestAudioAddr(t *testing.T) {
	a := netip.MustParseAddrPort("127.0.0.1:30000")
	if got, err := AudioAddr(AudioSDP(a)); err != nil || got != a {
		t.Errorf("AudioAddr(AudioSDP(%s)) = %s, %v", a, got, err)
	}
	sdp := "v=0\nc=IN IP4 10.0.0.1\nm=video 4000 RTP/AVP 96\nc=IN IP4 10.0.0.9\nm=audio 5000 RTP/AVP 0\nc=IN IP4 10.0.0.2\nm=audio 6000 RTP/AVP 0\nc=IN IP4 10.0.0.3\n"
	if got, err := AudioAddr(sdp); err != nil || got != netip.MustParseAddrPort("10.0.0.2:5000") {
		t.Errorf("AudioAddr = %s, %v", got, err)
	}
	if got, err := AudioAddr("v=0\nc=IN IP4 10.0.0.1\nm=audio 5000 RTP/AVP 0\n"); err != nil || got != netip.MustParseAddrPort("10.0.0.1:5000") {
		t.Errorf("session-level c=: %s, %v", got, err)
	}
	if _, err := AudioAddr("v=0\n"); err == nil {
		t.Error("no m=audio accepted")
	}
}
