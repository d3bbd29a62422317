package pcap

import (
	"bytes"
	"errors"
	"io"
	"net/netip"
	"os"
	"testing"
	"time"
)

func TestRoundTrip(t *testing.T) {
	var buf bytes.Buffer
	w := NewWriter(&buf)
	src := netip.MustParseAddrPort("192.0.2.1:4000")
	dst := netip.MustParseAddrPort("192.0.2.2:5004")
	t0 := time.Unix(1700000000, 123456000)
	payloads := [][]byte{[]byte("one"), {}, bytes.Repeat([]byte{7}, 172)}
	for i, p := range payloads {
		if err := w.WriteUDP(t0.Add(time.Duration(i)*20*time.Millisecond), src, dst, p); err != nil {
			t.Fatal(err)
		}
	}
	r, err := NewReader(&buf)
	if err != nil {
		t.Fatal(err)
	}
	for i, want := range payloads {
		rec, err := r.Next()
		if err != nil {
			t.Fatal(err)
		}
		if wt := t0.Add(time.Duration(i) * 20 * time.Millisecond); !rec.Time.Equal(wt) {
			t.Errorf("record %d time %v, want %v", i, rec.Time, wt)
		}
		s, d, p, err := r.UDP(rec.Data)
		if err != nil || s != src || d != dst || !bytes.Equal(p, want) {
			t.Errorf("record %d = %v %v %q %v, want %v %v %q", i, s, d, p, err, src, dst, want)
		}
		if c := checksum(rec.Data[14:34]); c != 0 {
			t.Errorf("record %d: IPv4 header checksum does not verify (%#x)", i, c)
		}
	}
	if _, err := r.Next(); !errors.Is(err, io.EOF) {
		t.Errorf("after the last record err = %v, want EOF", err)
	}
}

// SIPp's sample captures, when the package is installed (scripts/deps.sh).
func TestSIPpCapture(t *testing.T) {
	f, err := os.Open("/usr/share/sip-tester/dtmf_2833_1.pcap")
	if err != nil {
		t.Skip("SIPp's sample captures are not installed (scripts/deps.sh installs sip-tester)")
	}
	defer f.Close()
	r, err := NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for {
		rec, err := r.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if _, _, p, err := r.UDP(rec.Data); err != nil || len(p) != 16 {
			t.Fatalf("record %d: %d-byte payload, %v", n, len(p), err)
		}
		n++
	}
	if n != 10 {
		t.Errorf("%d records, want 10", n)
	}
}

func TestUDPRejects(t *testing.T) {
	for _, b := range [][]byte{nil, make([]byte, 14), append(make([]byte, 12), 0x86, 0xdd)} {
		if _, _, _, err := UDP(LinkEthernet, b); !errors.Is(err, ErrNotUDP) {
			t.Errorf("UDP(%x) err = %v, want ErrNotUDP", b, err)
		}
	}
	if _, err := NewReader(bytes.NewReader([]byte("not a pcap file, clearly not one"))); err == nil {
		t.Error("NewReader accepted junk")
	}
}
