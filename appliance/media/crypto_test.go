package media

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"github.com/pion/rtcp"
	"github.com/pion/rtp"
	"github.com/pion/srtp/v3"
)

func TestParseCrypto(t *testing.T) {
	const key = "PS1uQCVeeCFCanVmcjkpPywjNWhcYD0mXXtxaVBR" // RFC 4568 section 3.1
	for _, tc := range []struct {
		in, suite string
		tag       int
		err       string
	}{
		{in: "a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:" + key, tag: 1, suite: SuiteAES128SHA1_80},
		{in: "crypto:2 AES_CM_128_HMAC_SHA1_32 inline:" + key + "|2^31", tag: 2, suite: SuiteAES128SHA1_32},
		{in: "7 AES_CM_128_HMAC_SHA1_80 inline:" + key + "|1048576 WSH=64\r\n", tag: 7, suite: SuiteAES128SHA1_80},
		{in: "1 AES_CM_128_HMAC_SHA1_80 inline:" + key + "|2^20|1:32", err: "MKI"},
		{in: "1 AES_CM_128_HMAC_SHA1_80 inline:" + key + "|1:4", err: "MKI"},
		{in: "1 AES_CM_128_HMAC_SHA1_80 inline:" + key + ";inline:" + key, err: "several keys"},
		{in: "1 AES_CM_128_HMAC_SHA1_80 inline:" + key + " UNENCRYPTED_SRTP", err: "UNENCRYPTED_SRTP"},
		{in: "1 AES_256_CM_HMAC_SHA1_80 inline:" + key, err: "not supported"},
		{in: "1 AES_CM_128_HMAC_SHA1_80 inline:c2hvcnQ=", err: "wants 30"},
		{in: "1 AES_CM_128_HMAC_SHA1_80 inline:!!!", err: "base64"},
		{in: "1 AES_CM_128_HMAC_SHA1_80 " + key, err: "inline:"},
		{in: "x AES_CM_128_HMAC_SHA1_80 inline:" + key, err: "tag"},
		{in: "1 AES_CM_128_HMAC_SHA1_80", err: "want"},
	} {
		c, err := ParseCrypto(tc.in)
		if tc.err != "" {
			if err == nil || !errors.Is(err, ErrCrypto) || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("ParseCrypto(%q) error %v, want ErrCrypto mentioning %q", tc.in, err, tc.err)
			}
			continue
		}
		if err != nil {
			t.Errorf("ParseCrypto(%q): %v", tc.in, err)
			continue
		}
		if c.Tag != tc.tag || c.Suite != tc.suite || len(c.Key) != 30 {
			t.Errorf("ParseCrypto(%q) = %+v", tc.in, c)
		}
	}
}

func TestCryptoRoundTrip(t *testing.T) {
	for _, suite := range []string{SuiteAES128SHA1_80, SuiteAES128SHA1_32} {
		c, err := NewCrypto(1, suite)
		if err != nil {
			t.Fatal(err)
		}
		back, err := ParseCrypto("a=crypto:" + c.String())
		if err != nil {
			t.Fatal(err)
		}
		if back.Tag != 1 || back.Suite != suite || !bytes.Equal(back.Key, c.Key) {
			t.Errorf("%s: round trip %+v != %+v", suite, back, c)
		}
	}
	a, _ := NewCrypto(1, SuiteAES128SHA1_80)
	b, _ := NewCrypto(1, SuiteAES128SHA1_80)
	if bytes.Equal(a.Key, b.Key) {
		t.Error("two fresh keys are equal")
	}
	if _, err := NewCrypto(1, "NULL"); err == nil {
		t.Error("NewCrypto accepted an unknown suite")
	}
}

// TestRelaySRTPRoundTrip has side A speak SRTP (pion/srtp at the phone)
// and side B plain RTP: each gets the other's packets in its own form.
func TestRelaySRTPRoundTrip(t *testing.T) {
	r, _ := newTestRelay(t, 4, nil)
	s, err := r.Allocate(t.Name(), nil)
	if err != nil {
		t.Fatal(err)
	}
	aRTP, aRTCP, bRTP, bRTCP := newPhone(t), newPhone(t), newPhone(t), newPhone(t)
	s.A().SetRemote(aRTP.addr(), aRTCP.addr())
	s.B().SetRemote(bRTP.addr(), bRTCP.addr())

	relayKey, err := NewCrypto(1, SuiteAES128SHA1_80) // in the SDP sent to A
	if err != nil {
		t.Fatal(err)
	}
	phoneKey, err := ParseCrypto("a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:PS1uQCVeeCFCanVmcjkpPywjNWhcYD0mXXtxaVBR")
	if err != nil {
		t.Fatal(err)
	}
	if err := s.A().SetSRTP(relayKey, phoneKey); err != nil {
		t.Fatal(err)
	}
	phoneTx := pionContext(t, phoneKey)
	phoneRx := pionContext(t, relayKey)

	// A -> B: SRTP in, plain out.
	for seq := range uint16(5) {
		plain := rtpPacket(t, 0xA, seq)
		enc, err := phoneTx.EncryptRTP(nil, plain, nil)
		if err != nil {
			t.Fatal(err)
		}
		if bytes.Equal(enc[12:len(plain)], plain[12:]) {
			t.Fatal("payload not encrypted by the phone")
		}
		aRTP.send(s.A().LocalRTP(), enc)
		if got, _ := bRTP.recv(); !bytes.Equal(got, plain) {
			t.Fatalf("B got %x, want the decrypted %x", got, plain)
		}
	}
	// B -> A: plain in, SRTP out.
	for seq := range uint16(5) {
		plain := rtpPacket(t, 0xB, seq)
		bRTP.send(s.B().LocalRTP(), plain)
		got, _ := aRTP.recv()
		var h rtp.Header
		dec, err := phoneRx.DecryptRTP(nil, got, &h)
		if err != nil {
			t.Fatalf("phone cannot decrypt the relay's SRTP: %v", err)
		}
		if !bytes.Equal(dec, plain) {
			t.Fatalf("A decrypted %x, want %x", dec, plain)
		}
	}
	// SRTCP both ways.
	rr, _ := (&rtcp.ReceiverReport{SSRC: 0xA}).Marshal()
	enc, err := phoneTx.EncryptRTCP(nil, rr, nil)
	if err != nil {
		t.Fatal(err)
	}
	aRTCP.send(s.A().LocalRTCP(), enc)
	if got, _ := bRTCP.recv(); !bytes.Equal(got, rr) {
		t.Fatalf("B RTCP %x, want %x", got, rr)
	}
	sr, _ := (&rtcp.SenderReport{SSRC: 0xB}).Marshal()
	bRTCP.send(s.B().LocalRTCP(), sr)
	got, _ := aRTCP.recv()
	if dec, err := phoneRx.DecryptRTCP(nil, got, nil); err != nil || !bytes.Equal(dec, sr) {
		t.Fatalf("A SRTCP: %x, %v", dec, err)
	}

	// A forged packet (wrong key) and a replay are dropped; a good one
	// after them still passes.
	forger := pionContext(t, relayKey)
	forged, _ := forger.EncryptRTP(nil, rtpPacket(t, 0xA, 50), nil)
	aRTP.send(s.A().LocalRTP(), forged)
	replay, _ := phoneTx.EncryptRTP(nil, rtpPacket(t, 0xA, 51), nil)
	aRTP.send(s.A().LocalRTP(), replay)
	if got, _ := bRTP.recv(); !bytes.Equal(got, rtpPacket(t, 0xA, 51)) {
		t.Fatalf("B got %x", got)
	}
	aRTP.send(s.A().LocalRTP(), replay)
	good, _ := phoneTx.EncryptRTP(nil, rtpPacket(t, 0xA, 52), nil)
	aRTP.send(s.A().LocalRTP(), good)
	if got, _ := bRTP.recv(); !bytes.Equal(got, rtpPacket(t, 0xA, 52)) {
		t.Fatalf("B got %x after a replay", got)
	}
	// The relay counts a packet once its send returned, which can be after
	// the receiver already has it: poll until the counters settle.
	eventually(t, "SRTP drops and packet counts", func() bool {
		st := s.Stats()
		return st.Dropped.SRTP == 2 && st.AtoB.RTPPackets == 7 && st.BtoA.RTPPackets == 5
	})
	if st := s.Stats(); !st.A.SRTP || st.B.SRTP || st.AtoB.RTPPackets != 7 || st.BtoA.RTPPackets != 5 {
		t.Errorf("stats %+v", st)
	}
}

func TestSetSRTPRejectsBadKeys(t *testing.T) {
	r, _ := newTestRelay(t, 4, nil)
	s, err := r.Allocate(t.Name(), nil)
	if err != nil {
		t.Fatal(err)
	}
	good, _ := NewCrypto(1, SuiteAES128SHA1_80)
	if err := s.B().SetSRTP(good, Crypto{Tag: 1, Suite: "NULL"}); err == nil {
		t.Error("SetSRTP accepted an unknown suite")
	}
	if err := s.B().SetSRTP(Crypto{Tag: 1, Suite: SuiteAES128SHA1_80, Key: []byte{1, 2}}, good); err == nil {
		t.Error("SetSRTP accepted a short key")
	}
	if s.Stats().B.SRTP {
		t.Error("a failed SetSRTP left SRTP on")
	}
	if err := s.B().SetSRTP(good, good); err != nil || !s.Stats().B.SRTP {
		t.Fatalf("SetSRTP(good) = %v, SRTP %v", err, s.Stats().B.SRTP)
	}
	s.B().ClearSRTP()
	if s.Stats().B.SRTP {
		t.Error("ClearSRTP left SRTP on")
	}
}

func pionContext(t *testing.T, c Crypto) *srtp.Context {
	t.Helper()
	ctx, err := srtp.CreateContext(c.Key[:16], c.Key[16:], srtp.ProtectionProfileAes128CmHmacSha1_80)
	if err != nil {
		t.Fatal(err)
	}
	return ctx
}
