package conference

import (
	"math"
	"net"
	"net/netip"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/pion/rtp"

	"github.com/outpost-voice/outpost/appliance/media/dtmf"
	"github.com/outpost-voice/outpost/appliance/media/g711"
	"github.com/outpost-voice/outpost/appliance/media/prompts"
)

var loopback = netip.MustParseAddr("127.0.0.1")

func newBridges(t testing.TB) *Bridges {
	t.Helper()
	b, err := New(Config{IP: loopback, Prompts: prompts.NewLibrary(nil, nil)})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func open(t testing.TB, b *Bridges, id string) *Conference {
	t.Helper()
	c, err := b.Open(id)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

// phone is a participant's far end on loopback: it sends a tone (or what
// a test tells it) as 20 ms G.711 frames paced by the clock, and keeps
// every packet it receives.
type phone struct {
	t     testing.TB
	conn  *net.UDPConn
	codec g711.Codec

	mu   sync.Mutex
	got  []rtp.Packet
	stop chan struct{} // ends the tone being sent
	wg   sync.WaitGroup

	// The stream sent.
	ssrc uint32
	seq  uint16
	ts   uint32
}

func newPhone(t testing.TB, codec g711.Codec) *phone {
	t.Helper()
	conn, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.AddrPortFrom(loopback, 0)))
	if err != nil {
		t.Fatal(err)
	}
	ph := &phone{t: t, conn: conn, codec: codec, ssrc: 0x5000 + uint32(conn.LocalAddr().(*net.UDPAddr).Port), seq: 1000, ts: 50_000}
	go func() {
		buf := make([]byte, 1500)
		for {
			n, err := conn.Read(buf)
			if err != nil {
				return
			}
			var p rtp.Packet
			if p.Unmarshal(slices.Clone(buf[:n])) == nil {
				ph.mu.Lock()
				ph.got = append(ph.got, p)
				ph.mu.Unlock()
			}
		}
	}()
	t.Cleanup(func() {
		ph.quiet()
		conn.Close()
	})
	return ph
}

func (ph *phone) addr() netip.AddrPort { return ph.conn.LocalAddr().(*net.UDPAddr).AddrPort() }

// join adds the phone to c as partID, with telephone-events on 101.
func (ph *phone) join(c *Conference, partID string) *Participant {
	ph.t.Helper()
	p, err := c.Join(partID, ph.addr(), ph.codec, 101)
	if err != nil {
		ph.t.Fatal(err)
	}
	return p
}

// talk sends a tone of freq Hz and amplitude amp to p until quiet,
// frame n at the start plus n times 20 ms.
func (ph *phone) talk(p *Participant, freq, amp float64) {
	ph.quiet()
	ph.stop = make(chan struct{})
	stop, to := ph.stop, p.Addr()
	ph.wg.Add(1)
	go func() {
		defer ph.wg.Done()
		start := time.Now()
		var pcm frame
		buf := make([]byte, headerSize+frameSamples)
		for n := 0; ; {
			for ; time.Duration(n)*frameDur <= time.Since(start); n++ {
				for i := range pcm {
					pcm[i] = int16(amp * math.Sin(2*math.Pi*freq*float64(ph.ts+uint32(i))/g711.SampleRate))
				}
				ph.codec.Encode(buf[headerSize:], pcm[:])
				ph.send(to, ph.codec.PayloadType(), buf)
			}
			select {
			case <-stop:
				return
			case <-time.After(time.Until(start.Add(time.Duration(n) * frameDur))):
			}
		}
	}()
}

// send sends one packet of the phone's stream: b's header is written,
// its payload given; the timestamp advances by a frame after audio.
func (ph *phone) send(to netip.AddrPort, pt uint8, b []byte) {
	h := rtp.Header{Version: 2, PayloadType: pt, SequenceNumber: ph.seq, Timestamp: ph.ts, SSRC: ph.ssrc}
	if _, err := h.MarshalTo(b[:headerSize]); err != nil {
		panic(err)
	}
	ph.seq++
	if pt == ph.codec.PayloadType() {
		ph.ts += frameSamples
	}
	_, _ = ph.conn.WriteToUDPAddrPort(b, to)
}

// quiet stops the tone.
func (ph *phone) quiet() {
	if ph.stop != nil {
		close(ph.stop)
		ph.stop = nil
	}
	ph.wg.Wait()
}

// press sends key as RFC 4733 packets of payload type 101, paced.
func (ph *phone) press(p *Participant, key byte) {
	ph.t.Helper()
	pkts, err := dtmf.Sender{Interval: frameDur}.Packets(key)
	if err != nil {
		ph.t.Fatal(err)
	}
	ts := ph.ts
	for _, d := range pkts {
		b := d.Event.AppendTo(make([]byte, headerSize, headerSize+4))
		h := rtp.Header{Version: 2, PayloadType: 101, Marker: d.Marker, SequenceNumber: ph.seq, Timestamp: ts, SSRC: ph.ssrc}
		if _, err := h.MarshalTo(b[:headerSize]); err != nil {
			ph.t.Fatal(err)
		}
		ph.seq++
		_, _ = ph.conn.WriteToUDPAddrPort(b, p.Addr())
		time.Sleep(frameDur)
	}
}

// count is the number of packets received so far.
func (ph *phone) count() int {
	ph.mu.Lock()
	defer ph.mu.Unlock()
	return len(ph.got)
}

// packets returns the packets received from index from on, waiting until
// there are at least n of them.
func (ph *phone) packets(from, n int) []rtp.Packet {
	ph.t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		ph.mu.Lock()
		got := slices.Clone(ph.got[min(from, len(ph.got)):])
		ph.mu.Unlock()
		if len(got) >= n {
			return got
		}
		if time.Now().After(deadline) {
			ph.t.Fatalf("phone %s: %d packets after %d within 5 s, want %d", ph.addr(), len(got), from, n)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// hear decodes n frames received after index from (waiting for them).
func (ph *phone) hear(from, n int) []int16 {
	ph.t.Helper()
	pkts := ph.packets(from, n)[:n]
	pcm := make([]int16, 0, n*frameSamples)
	for _, p := range pkts {
		if p.PayloadType != ph.codec.PayloadType() || len(p.Payload) != frameSamples {
			ph.t.Fatalf("phone %s (%v) got payload type %d, %d bytes", ph.addr(), ph.codec, p.PayloadType, len(p.Payload))
		}
		var f frame
		ph.codec.Decode(f[:], p.Payload)
		pcm = append(pcm, f[:]...)
	}
	return pcm
}

// after is the index, in what a phone received from p, of the packet p
// sends n frames after the one it sends next: counted in packets the
// mixer sent, so that no delay of the phone's reading (a stall of the test
// process, as under -race on a busy machine) makes it early. The phone
// must have heard p alone, from p's first packet.
func after(p *Participant, n int) int { return int(p.Stats().Sent) + n }

// settle waits for d and returns the index of the next packet.
func (ph *phone) settle(d time.Duration) int {
	time.Sleep(d)
	return ph.count()
}

// amplitude is the amplitude of the freq Hz component of x (Goertzel).
// With len(x)*freq a multiple of 8000, a tone there reads as its
// amplitude and tones at other such frequencies read as 0.
func amplitude(x []int16, freq float64) float64 {
	w := 2 * math.Pi * freq / g711.SampleRate
	coeff := 2 * math.Cos(w)
	var s1, s2 float64
	for _, v := range x {
		s1, s2 = float64(v)+coeff*s1-s2, s1
	}
	power := s1*s1 + s2*s2 - coeff*s1*s2
	return 2 * math.Sqrt(max(power, 0)) / float64(len(x))
}

// peak is the largest magnitude in x.
func peak(x []int16) int {
	m := 0
	for _, v := range x {
		m = max(m, abs(int(v)))
	}
	return m
}

func abs(v int) int {
	if v < 0 {
		return -v
	}
	return v
}

// waitFor polls cond until it holds or 5 s pass.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within 5 s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
