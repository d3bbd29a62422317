package calls

import (
	"errors"
	"net/netip"
	"strings"
	"sync"
	"testing"

	"github.com/outpost-voice/outpost/account"
	relay "github.com/outpost-voice/outpost/appliance/media"
)

// sbcSRTPAnswer is an SBC's answer to an SRTP offer, keyed with tag 1.
const sbcSRTPAnswer = "v=0\r\n" +
	"o=sbc 1 1 IN IP4 203.0.113.5\r\n" +
	"s=-\r\n" +
	"c=IN IP4 203.0.113.5\r\n" +
	"t=0 0\r\n" +
	"m=audio 40000 RTP/SAVP 0 101\r\n" +
	"a=rtpmap:0 PCMU/8000\r\n" +
	"a=rtpmap:101 telephone-event/8000\r\n" +
	"a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:PS1uQCVeeCFCanVmcjkpPywjNWhcYD0mXXtxaVBR\r\n"

// fakeSession records what the B2BUA asks of a relay session.
type fakeSession struct {
	mu     sync.Mutex
	remote [2]netip.AddrPort
	keys   [2][]relay.Crypto // local, remote per SetSRTP call
	calls  int
}

func (f *fakeSession) Local(side int) netip.AddrPort {
	return netip.MustParseAddrPort([]string{"10.9.8.7:20000", "10.9.8.7:20002"}[side])
}

func (f *fakeSession) SetRemote(side int, addr netip.AddrPort) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.remote[side] = addr
}

func (f *fakeSession) SetSRTP(side int, local, remote relay.Crypto) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.keys[side] = []relay.Crypto{local, remote}
	f.calls++
	return nil
}

func (f *fakeSession) Close() {}

func cryptoLines(sdp []byte) []string {
	var out []string
	for _, l := range sdpLines(sdp) {
		if strings.HasPrefix(l, "a=crypto:") {
			out = append(out, l)
		}
	}
	return out
}

func TestWantsSDES(t *testing.T) {
	for srtp, want := range map[string]bool{"": false, account.SRTPOff: false, account.SRTPSDES: true} {
		if got := wantsSDES(account.Trunk{SRTP: srtp}); got != want {
			t.Errorf("wantsSDES(%q) = %v, want %v", srtp, got, want)
		}
	}
}

func TestSecuredSDP(t *testing.T) {
	key, err := relay.NewCrypto(1, relay.SuiteAES128SHA1_80)
	if err != nil {
		t.Fatal(err)
	}
	phone := strings.Replace(phoneOffer, "a=fmtp:101 0-16\r\n",
		"a=fmtp:101 0-16\r\na=crypto:7 AES_CM_128_HMAC_SHA1_32 inline:PS1uQCVeeCFCanVmcjkpPywjNWhcYD0mXXtxaVBR\r\n", 1)
	anchored, err := anchoredSDP([]byte(phone), netip.MustParseAddrPort("10.9.8.7:20002"), []string{"PCMU"})
	if err != nil {
		t.Fatal(err)
	}
	got := string(securedSDP(anchored, key))
	if !strings.Contains(got, "m=audio 20002 RTP/SAVP 0 101\r\n") {
		t.Errorf("audio stream is not RTP/SAVP:\n%s", got)
	}
	lines := cryptoLines([]byte(got))
	if want := "a=crypto:" + key.String(); len(lines) != 1 || lines[0] != want {
		t.Errorf("crypto lines %q, want only %q (the phone's dropped)", lines, want)
	}
	audio, video, _ := strings.Cut(got, "m=video")
	if !strings.Contains(audio, "a=crypto:") || strings.Contains(video, "a=crypto:") || !strings.Contains(video, " RTP/AVP 96") {
		t.Errorf("the key belongs to the audio stream only:\n%s", got)
	}
	if _, err := relay.ParseCrypto(lines[0]); err != nil {
		t.Errorf("the offered key does not parse: %v", err)
	}
	if c, err := sdpCryptos([]byte(got)); err != nil || len(c) != 1 || c[0].String() != key.String() {
		t.Errorf("sdpCryptos(secured) = %v, %v; want our key", c, err)
	}
	// AVPF stays feedback-capable.
	avpf := "v=0\r\nc=IN IP4 10.0.0.1\r\nm=audio 4000 RTP/AVPF 0\r\n"
	if got := string(securedSDP([]byte(avpf), key)); !strings.Contains(got, "m=audio 4000 RTP/SAVPF 0\r\na=crypto:1 ") {
		t.Errorf("AVPF offer secured as\n%s", got)
	}
}

func TestPlainSDP(t *testing.T) {
	got := string(plainSDP([]byte(sbcSRTPAnswer)))
	if !strings.Contains(got, "m=audio 40000 RTP/AVP 0 101\r\n") || strings.Contains(got, "a=crypto") {
		t.Errorf("plainSDP left SRTP in:\n%s", got)
	}
	if !strings.Contains(got, "a=rtpmap:101 telephone-event/8000\r\n") {
		t.Errorf("plainSDP dropped more than the key:\n%s", got)
	}
	if got := string(plainSDP([]byte(phoneOffer))); got != phoneOffer {
		t.Errorf("plainSDP changed a plain description:\n%s", got)
	}
}

func TestSDPCryptos(t *testing.T) {
	savp := func(attrs string) string {
		return "v=0\r\nc=IN IP4 203.0.113.5\r\nm=audio 40000 RTP/SAVP 0\r\n" + attrs
	}
	for _, tc := range []struct {
		name  string
		sdp   string
		suite []string // nil: ErrNoCrypto
	}{
		{"answer", sbcSRTPAnswer, []string{relay.SuiteAES128SHA1_80}},
		{"plain RTP", phoneOffer, nil},
		{"SAVP without a key", savp(""), nil},
		{"no audio", "v=0\r\nm=video 4000 RTP/SAVP 96\r\na=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:PS1uQCVeeCFCanVmcjkpPywjNWhcYD0mXXtxaVBR\r\n", nil},
		{"unknown suite only", savp("a=crypto:1 AEAD_AES_256_GCM inline:PS1uQCVeeCFCanVmcjkpPywjNWhcYD0mXXtxaVBR\r\n"), nil},
		{"short key only", savp("a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:AAAA\r\n"), nil},
		{"unusable, then usable", savp("a=crypto:1 F8_128_HMAC_SHA1_80 inline:PS1uQCVeeCFCanVmcjkpPywjNWhcYD0mXXtxaVBR\r\n" +
			"a=crypto:2 AES_CM_128_HMAC_SHA1_32 inline:PS1uQCVeeCFCanVmcjkpPywjNWhcYD0mXXtxaVBR\r\n"), []string{relay.SuiteAES128SHA1_32}},
		{"key of another stream", "v=0\r\nm=audio 4000 RTP/SAVP 0\r\nm=video 4002 RTP/SAVP 96\r\n" +
			"a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:PS1uQCVeeCFCanVmcjkpPywjNWhcYD0mXXtxaVBR\r\n", nil},
	} {
		got, err := sdpCryptos([]byte(tc.sdp))
		if tc.suite == nil {
			if !errors.Is(err, ErrNoCrypto) {
				t.Errorf("%s: sdpCryptos = %v, %v; want ErrNoCrypto", tc.name, got, err)
			}
			continue
		}
		if err != nil || len(got) != len(tc.suite) {
			t.Errorf("%s: sdpCryptos = %v, %v; want %v", tc.name, got, err, tc.suite)
			continue
		}
		for i, c := range got {
			if c.Suite != tc.suite[i] {
				t.Errorf("%s: suite %d = %s, want %s", tc.name, i, c.Suite, tc.suite[i])
			}
		}
	}
}

// TestSDESOffer: Outpost offers its key; the SBC's answer keys the relay
// (once, however often it is heard); an answer without a key is refused.
func TestSDESOffer(t *testing.T) {
	fs := &fakeSession{}
	keys, err := offerSDES()
	if err != nil {
		t.Fatal(err)
	}
	to := &party{media: &media{sess: fs, side: 1, codecs: []string{"PCMU"}, srtp: keys}}
	offer := to.told([]byte(phoneOffer))
	lines := cryptoLines(offer)
	if len(lines) != 1 || !strings.Contains(string(offer), "m=audio 20002 RTP/SAVP ") {
		t.Fatalf("offer to the SBC:\n%s", offer)
	}
	ours, _ := relay.ParseCrypto(lines[0])
	if err := to.media.key([]byte(sbcSRTPAnswer)); err != nil {
		t.Fatal(err)
	}
	to.heard([]byte(sbcSRTPAnswer))
	if fs.calls != 1 {
		t.Errorf("relay keyed %d times, want once", fs.calls)
	}
	sbcKey, _ := relay.ParseCrypto(cryptoLines([]byte(sbcSRTPAnswer))[0])
	if k := fs.keys[1]; len(k) != 2 || k[0].String() != ours.String() || k[1].String() != sbcKey.String() {
		t.Errorf("relay side 1 keyed with %v, want ours %v and the SBC's %v", k, ours, sbcKey)
	}
	if fs.remote[1] != netip.MustParseAddrPort("203.0.113.5:40000") {
		t.Errorf("relay side 1 sends to %v", fs.remote[1])
	}

	// The phone is told plain RTP.
	from := &party{media: &media{sess: fs, side: 0}}
	from.media.plain.Store(true)
	answer := from.told([]byte(sbcSRTPAnswer))
	if strings.Contains(string(answer), "a=crypto") || !strings.Contains(string(answer), "m=audio 20000 RTP/AVP 0 101") {
		t.Errorf("answer to the phone:\n%s", answer)
	}

	// Refusals: plain RTP, or only a suite other than the one offered.
	for name, answer := range map[string]string{
		"plain":       strings.Replace(strings.Replace(sbcSRTPAnswer, "RTP/SAVP", "RTP/AVP", 1), cryptoLines([]byte(sbcSRTPAnswer))[0]+"\r\n", "", 1),
		"other suite": strings.Replace(sbcSRTPAnswer, "AES_CM_128_HMAC_SHA1_80", "AES_CM_128_HMAC_SHA1_32", 1),
	} {
		keys, _ := offerSDES()
		m := &media{sess: &fakeSession{}, side: 1, srtp: keys}
		if err := m.key([]byte(answer)); !errors.Is(err, ErrNoCrypto) {
			t.Errorf("%s answer: key = %v, want ErrNoCrypto", name, err)
		}
	}
}

// TestSDESAnswer: a call from an SRTP trunk is answered with a key of
// the relay's, in the suite and tag the SBC chose.
func TestSDESAnswer(t *testing.T) {
	offer := "v=0\r\no=sbc 1 1 IN IP4 203.0.113.5\r\ns=-\r\nc=IN IP4 203.0.113.5\r\nt=0 0\r\n" +
		"m=audio 40000 RTP/SAVP 0\r\n" +
		"a=crypto:3 AES_CM_128_HMAC_SHA1_32 inline:PS1uQCVeeCFCanVmcjkpPywjNWhcYD0mXXtxaVBR\r\n" +
		"a=crypto:4 AES_CM_128_HMAC_SHA1_80 inline:PS1uQCVeeCFCanVmcjkpPywjNWhcYD0mXXtxaVBR\r\n"
	fs := &fakeSession{}
	trunk := &party{media: &media{sess: fs, side: 1, srtp: &sdes{}}}
	trunk.heard([]byte(offer))
	if fs.calls != 1 || fs.keys[1][1].Tag != 3 || fs.keys[1][0].Suite != relay.SuiteAES128SHA1_32 {
		t.Fatalf("relay keyed %d times with %v; want once, answering tag 3's suite", fs.calls, fs.keys[1])
	}
	answer := trunk.told([]byte(phoneOffer))
	lines := cryptoLines(answer)
	if len(lines) != 1 || !strings.HasPrefix(lines[0], "a=crypto:3 AES_CM_128_HMAC_SHA1_32 inline:") ||
		lines[0] == "a=crypto:"+fs.keys[1][1].String() {
		t.Errorf("answer's key %q: want our own, tag 3", lines)
	}
	if lines[0] != "a=crypto:"+fs.keys[1][0].String() {
		t.Errorf("answer's key %q is not the one the relay encrypts with (%v)", lines, fs.keys[1][0])
	}
}
