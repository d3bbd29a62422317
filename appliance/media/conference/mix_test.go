package conference

import (
	"encoding/binary"
	"fmt"
	"math"
	"net"
	"net/netip"
	"runtime"
	"testing"
	"time"

	"github.com/outpost-voice/outpost/appliance/media/dtmf"
	"github.com/outpost-voice/outpost/appliance/media/g711"
)

// stopped is a conference whose mixing goroutine does not run: the test
// drives mixFrame itself.
func stopped(b *Bridges, id string) *Conference {
	return &Conference{b: b, id: id, log: b.log, done: make(chan struct{})}
}

// toneAmp is the amplitude of toneFrames' tones.
const toneAmp = 3000

// toneFrames returns 50 consecutive 20 ms packets (header left zero) of
// a freq Hz tone in codec: a second, which loops seamlessly when freq is
// a whole number of Hz.
func toneFrames(codec g711.Codec, freq float64) [][]byte {
	out := make([][]byte, 50)
	var pcm frame
	for n := range out {
		for i := range pcm {
			pcm[i] = int16(toneAmp * math.Sin(2*math.Pi*freq*float64(n*frameSamples+i)/g711.SampleRate))
		}
		out[n] = make([]byte, headerSize+frameSamples)
		codec.Encode(out[n][headerSize:], pcm[:])
	}
	return out
}

// stamp writes an RTP header on b.
func stamp(b []byte, pt uint8, seq uint16, ts, ssrc uint32) {
	b[0], b[1] = 0x80, pt
	binary.BigEndian.PutUint16(b[2:], seq)
	binary.BigEndian.PutUint32(b[4:], ts)
	binary.BigEndian.PutUint32(b[8:], ssrc)
}

// A frame (reading every socket, a telephone-event included, the jitter
// buffers, the mix, encoding and sending) allocates nothing.
func TestMixFrameDoesNotAllocate(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("elsewhere a goroutine per socket reads, so what is sent is not there to mix at once")
	}
	b := newBridges(t)
	c := stopped(b, "alloc")
	// The far ends do not read: a reading goroutine's allocations would
	// count.
	sink, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.AddrPortFrom(loopback, 0)))
	if err != nil {
		t.Fatal(err)
	}
	defer sink.Close()
	peer := sink.LocalAddr().(*net.UDPAddr).AddrPort()
	var parts []*Participant
	for i := range 4 {
		codec := []g711.Codec{g711.PCMU, g711.PCMA}[i%2]
		p, err := c.Join(fmt.Sprint("p", i), peer, codec, 101)
		if err != nil {
			t.Fatal(err)
		}
		defer p.sock.close()
		parts = append(parts, p)
	}
	parts[3].SetMute(true)
	frames := toneFrames(g711.PCMU, 700)
	pcma := toneFrames(g711.PCMA, 900)
	event := dtmf.Event{Code: 5, Duration: 160}.AppendTo(make([]byte, headerSize, headerSize+4))
	c.pending = append(c.pending, newOverlay([][]int16{make([]int16, 1000*frameSamples)}, toneShift, parts[0]))
	n := 0
	step := func() {
		for i, p := range parts {
			f := frames[n%len(frames)]
			if p.codec == g711.PCMA {
				f = pcma[n%len(pcma)]
			}
			stamp(f, p.codec.PayloadType(), uint16(n), uint32(n*frameSamples), uint32(i+1))
			_, _ = sink.WriteToUDPAddrPort(f, p.Addr())
		}
		stamp(event, 101, uint16(n), 0, 1)
		_, _ = sink.WriteToUDPAddrPort(event, parts[0].Addr())
		now := time.Now()
		c.mixFrame(now, now)
		n++
	}
	for range 10 { // warm up: buffers primed, slices grown
		step()
	}
	if allocs := testing.AllocsPerRun(200, step); allocs != 0 {
		t.Errorf("a frame allocates %v times", allocs)
	}
	if st := parts[1].Stats(); st.Received < 200 || st.Sent < 200 {
		t.Errorf("stats %+v: the frames did not flow", st)
	}
}

// BenchmarkMix is the mixing goroutine's work for one frame of a
// conference of 3, 10 and 32 talking participants, half PCMU and half
// PCMA, sockets aside: parsing each one's packet into its jitter buffer,
// taking its frame, the sum, and each one's payload encoded. Sockets cost
// a receive and a send per participant on top (BenchmarkBridge).
//
//	go test -run '^$' -bench Mix -benchmem ./appliance/media/conference/
func BenchmarkMix(b *testing.B) {
	for _, n := range []int{3, 10, 32} {
		b.Run(fmt.Sprintf("participants=%d", n), func(b *testing.B) {
			c := stopped(newBridges(b), "bench")
			var parts []*Participant
			var streams [][][]byte
			for i := range n {
				codec := []g711.Codec{g711.PCMU, g711.PCMA}[i%2]
				p := newParticipant(c, fmt.Sprint("p", i), codec, 101)
				parts = append(parts, p)
				streams = append(streams, toneFrames(codec, float64(300+100*i)))
			}
			c.m.parts = parts
			now := time.Now()
			b.ReportAllocs()
			b.ResetTimer()
			for k := range b.N {
				for i, p := range parts {
					f := streams[i][k%50]
					stamp(f, p.codec.PayloadType(), uint16(k), uint32(k*frameSamples), uint32(i+1))
					p.handle(f, now)
					p.pull()
				}
				c.m.mix()
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(n), "ns/participant")
		})
	}
}
