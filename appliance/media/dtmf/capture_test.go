package dtmf

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/netip"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/pion/rtp"

	"github.com/outpost-voice/outpost/appliance/media/internal/pcap"
)

var update = flag.Bool("update", false, "rewrite the captures in testdata/")

// The captures in testdata are written by this package's Sender (through
// the stream helper): keys.pcap is every key once, as sent; impaired.pcap
// is "1234#" after the network had its way: every packet of '1' twice,
// no end packet of '2' arrived, '3' lost its start, '4' has neighbours
// swapped, and an end packet of '4' arrives after '#' began.
const allKeys = "0123456789*#ABCD"

func captures(t *testing.T) map[string][]timed {
	clean := newStream(160000).keys(t, allKeys)

	s := newStream(0xFFFF0000)
	var bad []timed
	for _, p := range s.key(t, '1', 0) {
		bad = append(bad, p, p)
	}
	bad = append(bad, dropEnds(s.key(t, '2', 200*time.Millisecond))...)
	bad = append(bad, s.key(t, '3', 400*time.Millisecond)[2:]...)
	four := s.key(t, '4', 600*time.Millisecond)
	four[1], four[2] = four[2], four[1]
	late := four[len(four)-1]
	bad = append(bad, four[:len(four)-1]...)
	pound := s.key(t, '#', 800*time.Millisecond)
	bad = append(bad, pound[0], late)
	bad = append(bad, pound[1:]...)
	return map[string][]timed{"keys.pcap": clean, "impaired.pcap": bad}
}

func TestCaptures(t *testing.T) {
	want := map[string]string{"keys.pcap": allKeys, "impaired.pcap": "1234#"}
	src := netip.MustParseAddrPort("192.0.2.10:40000")
	dst := netip.MustParseAddrPort("192.0.2.20:20000")
	for name, pkts := range captures(t) {
		var buf bytes.Buffer
		w := pcap.NewWriter(&buf)
		for _, p := range pkts {
			b, err := p.p.Marshal()
			if err != nil {
				t.Fatal(err)
			}
			if err := w.WriteUDP(p.at, src, dst, b); err != nil {
				t.Fatal(err)
			}
		}
		path := filepath.Join("testdata", name)
		if *update {
			if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		committed, err := os.ReadFile(path)
		if err != nil {
			t.Fatalf("%v (go test -run TestCaptures -update writes it)", err)
		}
		if !bytes.Equal(committed, buf.Bytes()) {
			t.Errorf("%s differs from what the sender writes now; go test -run TestCaptures -update rewrites it", path)
		}
		got, err := decodeFile(path, pt)
		if err != nil {
			t.Fatal(err)
		}
		if keysOf(got) != want[name] {
			t.Errorf("%s: keys %q, want %q", name, keysOf(got), want[name])
		}
	}
}

// SIPp ships RFC 2833 captures of each key (installed by scripts/deps.sh):
// ten packets each, the three end packets identical (same sequence
// number), duration counted in 16 kHz units.
func TestSIPpCaptures(t *testing.T) {
	dir := "/usr/share/sip-tester"
	if _, err := os.Stat(filepath.Join(dir, "dtmf_2833_0.pcap")); err != nil {
		t.Skip("SIPp's sample captures are not installed (scripts/deps.sh installs sip-tester)")
	}
	files := map[string]byte{"pound": '#', "star": '*'}
	for d := '0'; d <= '9'; d++ {
		files[string(d)] = byte(d)
	}
	for name, key := range files {
		got, err := decodeFile(filepath.Join(dir, "dtmf_2833_"+name+".pcap"), 101)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != 1 || got[0].Key != key || !got[0].Ended || got[0].Volume != 10 {
			t.Errorf("dtmf_2833_%s.pcap: got %+v, want one ended %q", name, got, key)
		}
	}
}

// decodeFile feeds every RTP packet of a capture, at its capture time, to
// a Receiver, and expires what is left a minute after the last.
func decodeFile(path string, payloadType uint8) ([]Digit, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	r, err := pcap.NewReader(f)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	rx := NewReceiver(ReceiverConfig{PayloadType: payloadType})
	var (
		out  []Digit
		last time.Time
	)
	for {
		rec, err := r.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		_, _, payload, err := r.UDP(rec.Data)
		if err != nil {
			continue
		}
		var p rtp.Packet
		if err := p.Unmarshal(payload); err != nil {
			continue
		}
		out = rx.Feed(out, &p, rec.Time)
		last = rec.Time
	}
	return rx.Expire(out, last.Add(time.Minute)), nil
}
