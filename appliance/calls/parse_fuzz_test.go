package calls

import (
	"bytes"
	"errors"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"testing"

	relay "github.com/outpost-voice/outpost/appliance/media"
)

// FuzzSDP feeds two arbitrary descriptions, as a phone would send them one
// after the other, through the rewriting a leg's descriptions get (sdp.go,
// srtp.go). Properties: sendRecv leaves no direction but a=sendrecv and
// nothing else changed; a leg's origin keeps the first description's o=
// fields with a version that grows by one exactly when the description
// changed; the usable a=crypto lines re-read the same; a secured audio
// stream carries only the relay's key and a plain one none.
func FuzzSDP(f *testing.F) {
	f.Add([]byte(phoneOffer), []byte(strings.Replace(phoneOffer, "a=rtcp:", "a=sendonly\r\na=rtcp:", 1)))
	f.Add([]byte(sbcSRTPAnswer), []byte(sbcSRTPAnswer))
	f.Add([]byte("v=0\r\no=- 1 18446744073709551615 IN IP4 0.0.0.0\r\nm=audio 1 RTP/SAVP 0\r\na=inactive\r\n"),
		[]byte("v=0\r\no=x 2 3 IN IP4 192.0.2.1\r\nm=audio 1 RTP/SAVP 0\r\na=recvonly\r\n"))
	key, err := relay.NewCrypto(1, relay.SuiteAES128SHA1_80)
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, first, next []byte) {
		// Directions.
		sr := sendRecv(next)
		if lines := sdpLines(sr); len(lines) != len(sdpLines(next)) ||
			slices.ContainsFunc(lines, func(l string) bool { return l == "a=sendonly" || l == "a=recvonly" || l == "a=inactive" }) {
			t.Fatalf("sendRecv(%q) = %q", next, sr)
		}
		if again := sendRecv(sr); !bytes.Equal(again, sr) {
			t.Fatalf("sendRecv is not idempotent: %q then %q", sr, again)
		}

		// The leg's origin.
		var o origin
		firstOut := o.present(first)
		if !bytes.Equal(firstOut, first) {
			t.Fatalf("the first description was changed: %q to %q", first, firstOut)
		}
		if o.fields != nil {
			v := o.version
			out := o.present(next)
			checkOrigin(t, &o, next, out)
			_, _, nf := findOrigin(next)
			if nf != nil && o.version != v && o.version != v+1 {
				t.Fatalf("version %d after %d", o.version, v)
			}
			if nf != nil && bytes.Equal(withoutOrigin(next), withoutOrigin(first)) && o.version != v {
				t.Fatalf("an unchanged description got version %d after %d", o.version, v)
			}
			if again := o.present(next); !bytes.Equal(again, out) {
				t.Fatalf("the same description presented twice differs: %q then %q", out, again)
			}
		}

		// SRTP (SDES) keys.
		cs, err := sdpCryptos(next)
		if err != nil && !errors.Is(err, ErrNoCrypto) {
			t.Fatalf("error %v does not wrap ErrNoCrypto", err)
		}
		for _, c := range cs {
			back, err := relay.ParseCrypto("a=crypto:" + c.String())
			if err != nil || !sameCrypto(back, c) {
				t.Fatalf("crypto %+v re-reads as %+v, %v", c, back, err)
			}
		}
		if hasAudio(next) {
			got, err := sdpCryptos(securedSDP(next, key))
			if err != nil || len(got) != 1 || !sameCrypto(got[0], key) {
				t.Fatalf("secured %q: cryptos %v, %v; want only the relay's", next, got, err)
			}
		}
		if got, err := sdpCryptos(plainSDP(next)); err == nil {
			t.Fatalf("plain %q still has keys %v", next, got)
		}
	})
}

// checkOrigin: out is body with o's origin (fields and version) in place of
// body's own o= line, everything else unchanged; body itself when it has no
// valid o= line.
func checkOrigin(t *testing.T, o *origin, body, out []byte) {
	t.Helper()
	start, end, fields := findOrigin(body)
	if fields == nil {
		if !bytes.Equal(out, body) {
			t.Fatalf("a description without an origin was changed: %q to %q", body, out)
		}
		return
	}
	want := "o=" + strings.Join([]string{string(o.fields[0]), string(o.fields[1]), strconv.FormatUint(o.version, 10),
		string(o.fields[3]), string(o.fields[4]), string(o.fields[5])}, " ")
	if string(out) != string(body[:start])+want+string(body[end:]) {
		t.Fatalf("presented %q as %q, want the origin %q", body, out, want)
	}
}

// withoutOrigin is body without its o= line.
func withoutOrigin(body []byte) []byte {
	start, end, fields := findOrigin(body)
	if fields == nil {
		return body
	}
	return append(append([]byte{}, body[:start]...), body[end:]...)
}

func sameCrypto(a, b relay.Crypto) bool {
	return a.Tag == b.Tag && a.Suite == b.Suite && bytes.Equal(a.Key, b.Key)
}

// hasAudio reports whether body has an audio stream line securedSDP
// rewrites.
func hasAudio(body []byte) bool {
	return slices.ContainsFunc(sdpLines(body), func(l string) bool {
		f := strings.Fields(strings.TrimPrefix(l, "m="))
		return strings.HasPrefix(l, "m=") && len(f) >= 3 && f[0] == "audio"
	})
}

// FuzzReplaces feeds arbitrary Replaces values (RFC 3891), as a REFER's
// Refer-To carries them (URL-encoded), to the parser and to the B2BUA with
// no call: a value is refused as malformed (400) exactly when it does not
// parse, otherwise names no call (481); nothing is ever matched. What
// parses prints back to a value that parses the same.
func FuzzReplaces(f *testing.F) {
	for _, s := range []string{
		"fuzz-2%40192.0.2.10%3Bto-tag%3Dx%3Bfrom-tag%3Dy",
		"425928%40bobster.example.org%3Bto-tag%3D7743%3Bfrom-tag%3D6472",
		"98732%40sip.example.com%3Bfrom-tag%3Dr33th4x0r%3Bto-tag%3Dffd30b%3Bearly-only",
		"%zz",
	} {
		f.Add(s)
	}
	b := fuzzB2BUA(f)
	f.Fuzz(func(t *testing.T, raw string) {
		c, p, code, reason := b.replaces(raw, &party{})
		v, err := url.QueryUnescape(raw)
		callID, toTag, fromTag, ok := parseReplaces(v)
		if want := map[bool]int{true: 481, false: 400}[err == nil && ok]; c != nil || p != nil || code != want || reason == "" {
			t.Fatalf("replaces(%q) with no call = %v %v %d %q, want %d", raw, c, p, code, reason, want)
		}
		if err != nil || !ok {
			return
		}
		if callID == "" || toTag == "" || fromTag == "" || strings.Contains(callID, ";") || strings.TrimSpace(callID) != callID {
			t.Fatalf("parseReplaces(%q) = %q %q %q", raw, callID, toTag, fromTag)
		}
		c2, t2, f2, ok2 := parseReplaces(callID + ";to-tag=" + toTag + ";from-tag=" + fromTag)
		if !ok2 || c2 != callID || t2 != toTag || f2 != fromTag {
			t.Fatalf("%q: %q %q %q prints back as %q %q %q %v", raw, callID, toTag, fromTag, c2, t2, f2, ok2)
		}
	})
}
