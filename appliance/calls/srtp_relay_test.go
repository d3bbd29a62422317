package calls

import (
	"bytes"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/pion/rtp"
	"github.com/pion/srtp/v3"

	relay "github.com/outpost-voice/outpost/appliance/media"
)

// relaySession is the node's adapter (appliance/node/trunks.go) over a
// real relay session.
type relaySession struct{ s *relay.Session }

func (r relaySession) side(i int) *relay.Side {
	if i == 0 {
		return r.s.A()
	}
	return r.s.B()
}
func (r relaySession) Local(side int) netip.AddrPort { return r.side(side).LocalRTP() }
func (r relaySession) SetRemote(side int, addr netip.AddrPort) {
	r.side(side).SetRemote(addr, netip.AddrPort{})
}
func (r relaySession) SetSRTP(side int, local, remote relay.Crypto) error {
	return r.side(side).SetSRTP(local, remote)
}
func (r relaySession) Close() { _ = r.s.Close() }

func udpPeer(t *testing.T) *net.UDPConn {
	t.Helper()
	c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func readPacket(t *testing.T, c *net.UDPConn) []byte {
	t.Helper()
	buf := make([]byte, 1500)
	_ = c.SetReadDeadline(time.Now().Add(3 * time.Second))
	n, _, err := c.ReadFromUDP(buf)
	if err != nil {
		t.Fatalf("read: %v", err)
	}
	return buf[:n]
}

func pionContext(t *testing.T, c relay.Crypto) *srtp.Context {
	t.Helper()
	ctx, err := srtp.CreateContext(c.Key[:16], c.Key[16:], srtp.ProtectionProfileAes128CmHmacSha1_80)
	if err != nil {
		t.Fatal(err)
	}
	return ctx
}

func g711Packet(t *testing.T, ssrc uint32, seq uint16) []byte {
	t.Helper()
	p := rtp.Packet{Header: rtp.Header{Version: 2, SequenceNumber: seq, Timestamp: uint32(seq) * 160, SSRC: ssrc},
		Payload: bytes.Repeat([]byte{byte(seq)}, 160)}
	b, err := p.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestSDESThroughRelay: a call out to an SRTP trunk, through a real relay:
// the phone speaks plain RTP, the SBC (pion/srtp here) SRTP keyed from
// the descriptions the B2BUA exchanged, both ways.
func TestSDESThroughRelay(t *testing.T) {
	r, err := relay.New(relay.Config{IP: netip.MustParseAddr("127.0.0.1"), PortMin: 32000, PortMax: 32063,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = r.Close() })
	s, err := r.Allocate(t.Name(), nil)
	if err != nil {
		t.Fatal(err)
	}
	ms := relaySession{s}
	defer ms.Close()
	phone, sbc := udpPeer(t), udpPeer(t)
	sdpAt := func(c *net.UDPConn, proto, attrs string) []byte {
		port := c.LocalAddr().(*net.UDPAddr).Port
		return []byte(fmt.Sprintf("v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"+
			"m=audio %d %s 0\r\na=rtpmap:0 PCMU/8000\r\n%s", port, proto, attrs))
	}

	phoneOffer := sdpAt(phone, "RTP/AVP", "")
	from := &party{media: &media{sess: ms, side: 0}}
	from.media.plain.Store(true)
	from.heard(phoneOffer)
	keys, err := offerSDES()
	if err != nil {
		t.Fatal(err)
	}
	to := &party{media: &media{sess: ms, side: 1, codecs: []string{"PCMU"}, srtp: keys}}
	offer := to.told(phoneOffer)
	offered, err := sdpCryptos(offer)
	if err != nil {
		t.Fatalf("offer to the SBC: %v\n%s", err, offer)
	}
	sbcKey, err := relay.NewCrypto(offered[0].Tag, offered[0].Suite)
	if err != nil {
		t.Fatal(err)
	}
	answer := sdpAt(sbc, "RTP/SAVP", "a=crypto:"+sbcKey.String()+"\r\n")
	if err := to.media.key(answer); err != nil {
		t.Fatal(err)
	}
	to.heard(answer)
	if got := from.told(answer); bytes.Contains(got, []byte("crypto")) || !bytes.Contains(got, []byte("RTP/AVP 0")) {
		t.Errorf("answer to the phone:\n%s", got)
	}

	fromRelay, toRelay := pionContext(t, offered[0]), pionContext(t, sbcKey)
	for seq := range uint16(5) {
		// phone -> SBC: plain in, SRTP out.
		plain := g711Packet(t, 0xA, seq)
		if _, err := phone.WriteToUDPAddrPort(plain, ms.Local(0)); err != nil {
			t.Fatal(err)
		}
		got := readPacket(t, sbc)
		if bytes.Equal(got, plain) {
			t.Fatal("the SBC got plain RTP")
		}
		dec, err := fromRelay.DecryptRTP(nil, got, nil)
		if err != nil || !bytes.Equal(dec, plain) {
			t.Fatalf("the SBC decrypts %x, %v; want %x", dec, err, plain)
		}
		// SBC -> phone: SRTP in, plain out.
		plain = g711Packet(t, 0xB, seq)
		enc, err := toRelay.EncryptRTP(nil, plain, nil)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := sbc.WriteToUDPAddrPort(enc, ms.Local(1)); err != nil {
			t.Fatal(err)
		}
		if got := readPacket(t, phone); !bytes.Equal(got, plain) {
			t.Fatalf("the phone got %x, want %x", got, plain)
		}
	}
}
