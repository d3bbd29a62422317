package conference

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net"
	"net/netip"
	"runtime"
	"slices"
	"testing"
	"time"

	"github.com/outpost-voice/outpost/appliance/media/g711"
)

// Tones are measured over 1600 samples (200 ms, ten frames): every
// frequency used is a multiple of 5 Hz, so each reads as its amplitude and
// the others as nothing.
const window = 10

// The join and leave tones' frequencies (the built-in prompts).
const toneLow, toneHigh = 660, 990

// windows is how many windows the tests hear where a sound must be
// heard: a frame concealed or skipped (a phone or the mixer late by more
// than the jitter buffer holds, as when the test process stalls under
// -race on a busy machine) lowers the level of the window it falls in,
// not of the others.
const windows = 3

// checkHears fails unless pcm, cut in windows of window frames, has each
// of want at over half amp in some window, and none of not above a
// twentieth of it in any.
func checkHears(t testing.TB, who string, pcm []int16, amp float64, want, not []float64) {
	t.Helper()
	const n = window * frameSamples
	level := func(f float64) (lo, hi float64) {
		lo = math.Inf(1)
		for k := 0; k+n <= len(pcm); k += n {
			a := amplitude(pcm[k:k+n], f)
			lo, hi = min(lo, a), max(hi, a)
		}
		return lo, hi
	}
	for _, f := range want {
		if _, a := level(f); a < amp/2 {
			t.Errorf("%s hears %v Hz at %.0f at most, want about %.0f", who, f, a, amp)
		}
	}
	for _, f := range not {
		if _, a := level(f); a > amp/20 {
			t.Errorf("%s hears %v Hz at %.0f, want nothing", who, f, a)
		}
	}
}

// Each of three parties hears the other two and not itself, PCMU and PCMA
// parties alike.
func TestThreePartiesHearTheOthers(t *testing.T) {
	c := open(t, newBridges(t), "conf-3")
	codecs := []g711.Codec{g711.PCMU, g711.PCMA, g711.PCMU}
	freqs := []float64{500, 1100, 1700}
	const amp = 6000
	var phones []*phone
	var parts []*Participant
	for i, codec := range codecs {
		ph := newPhone(t, codec)
		p := ph.join(c, fmt.Sprint("p", i))
		ph.talk(p, freqs[i], amp)
		phones, parts = append(phones, ph), append(parts, p)
	}
	var from []int // the same frames for everyone
	for _, p := range parts {
		from = append(from, after(p, 20)) // the join tone (12 frames) is over
	}
	for i, ph := range phones {
		others := slices.Delete(slices.Clone(freqs), i, i+1)
		checkHears(t, fmt.Sprintf("%v party %d", codecs[i], i), ph.hear(from[i], windows*window), amp, others, []float64{freqs[i], toneLow, toneHigh})
	}
}

// A PCMA party hears a PCMU one at the level it was sent, and the other
// way round: the mix is linear PCM, each stream in its own codec.
func TestPCMUAndPCMAHearEachOther(t *testing.T) {
	c := open(t, newBridges(t), "conf-codecs")
	u, a := newPhone(t, g711.PCMU), newPhone(t, g711.PCMA)
	const amp = 8000
	u.talk(u.join(c, "u"), 1200, amp)
	a.talk(a.join(c, "a"), 700, amp)
	for _, tc := range []struct {
		ph   *phone
		freq float64
	}{{u, 700}, {a, 1200}} {
		// The loudest window (see windows).
		pcm := tc.ph.hear(tc.ph.settle(300*time.Millisecond), windows*window)
		got := 0.0
		for k := range windows {
			got = max(got, amplitude(pcm[k*window*frameSamples:(k+1)*window*frameSamples], tc.freq))
		}
		if got < amp*0.93 || got > amp*1.07 {
			t.Errorf("%v party hears %v Hz at %.0f, want %d within 7 %%", tc.ph.codec, tc.freq, got, amp)
		}
	}
}

// Muting a party takes its voice out of what the others hear; it still
// hears them. Unmuting puts it back.
func TestMute(t *testing.T) {
	c := open(t, newBridges(t), "conf-mute")
	freqs := []float64{400, 1300, 2100}
	const amp = 5000
	var phones []*phone
	var parts []*Participant
	for i, f := range freqs {
		ph := newPhone(t, g711.PCMA)
		p := ph.join(c, fmt.Sprint("p", i))
		ph.talk(p, f, amp)
		phones, parts = append(phones, ph), append(parts, p)
	}
	parts[1].SetMute(true)
	if !parts[1].Muted() {
		t.Error("Muted() = false after SetMute(true)")
	}
	// From 20 frames on the streams play and the join tone is over; the
	// mute fades within the next frame.
	var from []int
	for _, p := range parts {
		from = append(from, max(after(p, 2), 20))
	}
	checkHears(t, "party 0, 1 muted", phones[0].hear(from[0], windows*window), amp, freqs[2:], freqs[:2])
	checkHears(t, "party 2, 1 muted", phones[2].hear(from[2], windows*window), amp, freqs[:1], freqs[1:])
	checkHears(t, "muted party 1", phones[1].hear(from[1], windows*window), amp, []float64{freqs[0], freqs[2]}, freqs[1:2])
	parts[1].SetMute(false)
	checkHears(t, "party 0, 1 unmuted", phones[0].hear(after(parts[0], 2), windows*window), amp, freqs[1:], freqs[:1])
}

// The join tone is heard by those already in a conference of three or
// more, not by the one joining, nor in a two-party call; the leave tone
// by those who remain.
func TestJoinAndLeaveTones(t *testing.T) {
	c := open(t, newBridges(t), "conf-tones")
	a, b, x := newPhone(t, g711.PCMU), newPhone(t, g711.PCMA), newPhone(t, g711.PCMU)
	pa := a.join(c, "a")
	time.Sleep(100 * time.Millisecond)
	fromA := a.count()
	pb := b.join(c, "b")
	// 20 frames (400 ms) from a join hold the whole tone (240 ms).
	const span = 2 * window
	if pcm := a.hear(fromA, span); peak(pcm) > 50 {
		t.Errorf("the first party heard a sound (peak %d) when the second joined", peak(pcm))
	}
	// The tone starts at the next packet the mixer sends each (or the one
	// after, if it is mixing that one now), however late the phones read.
	fromA, fromB := after(pa, 0), after(pb, 0)
	px := x.join(c, "x")
	fromX := 0
	for _, tc := range []struct {
		who  string
		ph   *phone
		from int
	}{{"first party", a, fromA}, {"second party", b, fromB}} {
		pcm := tc.ph.hear(tc.from, span)
		if lo, hi := amplitude(pcm, toneLow), amplitude(pcm, toneHigh); lo < 500 || hi < 500 {
			t.Errorf("%s: join tone at %.0f (660 Hz) and %.0f (990 Hz), want both over 500", tc.who, lo, hi)
		}
	}
	if pcm := x.hear(fromX, span); peak(pcm) > 50 {
		t.Errorf("the party joining heard a sound (peak %d)", peak(pcm))
	}
	fromA, fromB = after(pa, 0), after(pb, 0)
	px.Leave()
	for _, tc := range []struct {
		who  string
		ph   *phone
		from int
	}{{"first party", a, fromA}, {"second party", b, fromB}} {
		pcm := tc.ph.hear(tc.from, span)
		if lo, hi := amplitude(pcm, toneLow), amplitude(pcm, toneHigh); lo < 500 || hi < 500 {
			t.Errorf("%s: leave tone at %.0f (660 Hz) and %.0f (990 Hz), want both over 500", tc.who, lo, hi)
		}
	}
}

// Ten parties, each with its own tone, PCMU and PCMA mixed: each hears the
// nine others and not itself.
func TestTenParties(t *testing.T) {
	c := open(t, newBridges(t), "conf-10")
	const amp = 2500 // nine at once stay under full scale
	var freqs []float64
	var phones []*phone
	var parts []*Participant
	for i := range 10 {
		codec := g711.PCMU
		if i%2 == 1 {
			codec = g711.PCMA
		}
		ph := newPhone(t, codec)
		f := float64(400 + 200*i)
		p := ph.join(c, fmt.Sprint("p", i))
		ph.talk(p, f, amp)
		freqs, phones, parts = append(freqs, f), append(phones, ph), append(parts, p)
	}
	if got := c.Participants(); len(got) != 10 || got[0] != "p0" || got[9] != "p9" {
		t.Errorf("Participants() = %v, want p0 … p9 in join order", got)
	}
	var from []int // the same frames for everyone
	for _, p := range parts {
		from = append(from, after(p, 15)) // past the last join tone
	}
	for i, ph := range phones {
		others := slices.Delete(slices.Clone(freqs), i, i+1)
		checkHears(t, fmt.Sprint("party ", i), ph.hear(from[i], windows*window), amp, others, freqs[i:i+1])
	}
}

// A lost packet is counted (and concealed: TestJitter), reordered
// packets are played in order, a foreign payload type is ignored: the
// other party keeps hearing the tone.
func TestLossAndReorder(t *testing.T) {
	c := open(t, newBridges(t), "conf-loss")
	talker, listener := newPhone(t, g711.PCMU), newPhone(t, g711.PCMU)
	p := talker.join(c, "talker")
	listener.join(c, "listener")

	// 60 frames paced by the clock: frame 20 never sent, 31 before 30,
	// and a loud packet of payload type 96 after frame 40.
	const amp, freq = 6000, 800
	frames := make([][]byte, 60)
	for n := range frames {
		var pcm frame
		for i := range pcm {
			pcm[i] = int16(amp * sin(freq, n*frameSamples+i))
		}
		frames[n] = make([]byte, headerSize+frameSamples)
		g711.PCMU.Encode(frames[n][headerSize:], pcm[:])
	}
	order := make([]int, 0, 60)
	for n := range 60 {
		switch n {
		case 20:
		case 30:
			order = append(order, 31, 30)
		case 31:
		default:
			order = append(order, n)
		}
	}
	from := listener.count()
	start := time.Now()
	for i, n := range order {
		time.Sleep(time.Until(start.Add(time.Duration(i) * frameDur)))
		talker.seq, talker.ts = uint16(7000+n), uint32(160*n)
		talker.send(p.Addr(), 0, frames[n])
		if n == 40 {
			loud := make([]byte, headerSize+frameSamples) // payload all 0x00: full scale in µ-law
			talker.send(p.Addr(), 96, loud)
		}
	}
	waitFor(t, "59 frames received", func() bool { return p.Stats().Received >= 59 })
	st := p.Stats()
	// The missing frame is concealed when its turn comes, or skipped
	// unplayed when a burst (the sender or the mixer late, as under -race
	// on a busy machine) fills the buffer past it first: lost either way.
	if st.Lost < 1 || st.Lost > 2 || st.Ignored != 1 {
		t.Errorf("stats %+v: want 1 lost (2 if the reordered pair straddled a frame), 1 ignored", st)
	}
	pcm := listener.hear(from, 60)
	if pk := peak(pcm); pk > amp*11/10 {
		t.Errorf("listener heard a peak of %d: the foreign payload type was mixed", pk)
	}
	var heard int
	for k := 0; k+window <= 60; k += window {
		if amplitude(pcm[k*frameSamples:(k+window)*frameSamples], freq) > amp/2 {
			heard++
		}
	}
	if heard < 3 {
		t.Errorf("the tone was heard in %d windows of 200 ms out of 6, want at least 3", heard)
	}
}

func sin(freq float64, i int) float64 {
	return math.Sin(2 * math.Pi * freq * float64(i) / g711.SampleRate)
}

// A key sent as RFC 4733 events comes out of Keys, once; it is not heard.
func TestKeys(t *testing.T) {
	c := open(t, newBridges(t), "conf-keys")
	presser, listener := newPhone(t, g711.PCMA), newPhone(t, g711.PCMU)
	p := presser.join(c, "presser")
	listener.join(c, "listener")
	from := listener.count()
	presser.press(p, '7')
	select {
	case k := <-p.Keys():
		if k != '7' {
			t.Errorf("key %q, want '7'", k)
		}
	case <-time.After(2 * time.Second):
		t.Fatal("no key within 2 s")
	}
	select {
	case k := <-p.Keys():
		t.Errorf("a second key %q", k)
	case <-time.After(100 * time.Millisecond):
	}
	if pcm := listener.hear(from, 10); peak(pcm) > 50 {
		t.Errorf("the listener heard the key press (peak %d)", peak(pcm))
	}
}

// A party's peer may move: SetPeer sends its mix to the new address and
// takes its audio only from there.
func TestSetPeer(t *testing.T) {
	c := open(t, newBridges(t), "conf-peer")
	old, moved, other := newPhone(t, g711.PCMU), newPhone(t, g711.PCMU), newPhone(t, g711.PCMU)
	p := old.join(c, "mover")
	po := other.join(c, "other")
	other.talk(po, 1500, 6000)
	old.talk(p, 600, 6000)
	checkHears(t, "other, before the move", other.hear(other.settle(300*time.Millisecond), windows*window), 6000, []float64{600}, nil)
	if err := p.SetPeer(moved.addr()); err != nil {
		t.Fatal(err)
	}
	moved.talk(p, 900, 6000) // old keeps sending 600 Hz from the old address
	checkHears(t, "the moved phone", moved.hear(moved.settle(300*time.Millisecond), windows*window), 6000, []float64{1500}, nil)
	// Past what the old address had queued (three frames buffered at most).
	checkHears(t, "other, after the move", other.hear(after(po, 10), windows*window), 6000, []float64{900}, []float64{600})
}

// Play mixes a prompt into what everyone hears and returns when it ends;
// a cancelled context stops it.
func TestPlay(t *testing.T) {
	c := open(t, newBridges(t), "conf-play")
	a, b := newPhone(t, g711.PCMU), newPhone(t, g711.PCMA)
	pa, pb := a.join(c, "a"), b.join(c, "b")
	fromA, fromB := after(pa, 0), after(pb, 0) // where the beep starts at the latest
	start := time.Now()
	if err := c.Play(context.Background(), "beep"); err != nil { // 1 kHz, 0.3 s
		t.Fatal(err)
	}
	if took := time.Since(start); took < 250*time.Millisecond || took > 2*time.Second {
		t.Errorf("Play of a 0.3 s prompt took %v", took)
	}
	for _, x := range []struct {
		ph   *phone
		from int
	}{{a, fromA}, {b, fromB}} {
		if amp := amplitude(x.ph.hear(x.from, 2*window), 1000); amp < 3000 {
			t.Errorf("%v party heard the beep at %.0f, want it loud", x.ph.codec, amp)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if err := c.Play(ctx, "main-menu"); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Play with a context that ends = %v, want DeadlineExceeded", err)
	}
}

// The two parties of a call that becomes a conference hear one stream
// throughout: the marker on its first packet only, sequence numbers
// without a gap, one SSRC, timestamps advancing a frame a packet.
func TestTwoPartyCallBecomesConference(t *testing.T) {
	c := open(t, newBridges(t), "conf-grow")
	a, b, x := newPhone(t, g711.PCMU), newPhone(t, g711.PCMA), newPhone(t, g711.PCMU)
	joined := time.Now()
	pa := a.join(c, "a")
	pb := b.join(c, "b")
	a.talk(pa, 500, 5000)
	b.talk(pb, 1100, 5000)
	first := a.packets(0, 1)[0]
	if took := time.Since(joined); took > time.Second {
		t.Errorf("first packet to a party %v after Join", took)
	}
	checkHears(t, "a, two-party", a.hear(after(pa, 15), windows*window), 5000, []float64{1100}, []float64{500})
	x.talk(x.join(c, "x"), 1700, 5000)
	checkHears(t, "a, conference", a.hear(after(pa, 25), windows*window), 5000, []float64{1100, 1700}, []float64{500})
	for _, ph := range []*phone{a, b} {
		pkts := ph.packets(0, 1)
		if !pkts[0].Marker {
			t.Errorf("%v party: no marker on the first packet", ph.codec)
		}
		late := 0
		for i := 1; i < len(pkts); i++ {
			p, q := pkts[i-1], pkts[i]
			if q.SSRC != first.SSRC && ph == a || q.Marker || q.SequenceNumber != p.SequenceNumber+1 {
				t.Fatalf("%v party, packet %d: SSRC %x marker %v seq %d after %d: the stream was not continuous",
					ph.codec, i, q.SSRC, q.Marker, q.SequenceNumber, p.SequenceNumber)
			}
			if d := q.Timestamp - p.Timestamp; d != frameSamples {
				if d%frameSamples != 0 || d > 100*frameSamples {
					t.Fatalf("%v party, packet %d: timestamp advanced %d", ph.codec, i, d)
				}
				late++ // the mixer skipped frames it was too late for
			}
		}
		if late > len(pkts)/20 {
			t.Errorf("%v party: %d timestamp jumps in %d packets", ph.codec, late, len(pkts))
		}
	}
}

// Leave closes the participant's socket and its Keys; the others go on.
func TestLeave(t *testing.T) {
	c := open(t, newBridges(t), "conf-leave")
	a, b := newPhone(t, g711.PCMU), newPhone(t, g711.PCMU)
	pa := a.join(c, "a")
	b.join(c, "b")
	addr := pa.Addr()
	pa.Leave()
	pa.Leave() // twice is fine
	if got := c.Participants(); !slices.Equal(got, []string{"b"}) {
		t.Errorf("Participants() after a left = %v, want [b]", got)
	}
	// The socket is released once the mixing goroutine is out of any read
	// of it (microseconds).
	waitFor(t, "the participant's port released after Leave", func() bool { return portFree(addr) })
	select {
	case _, ok := <-pa.Keys():
		if ok {
			t.Error("a key after Leave")
		}
	case <-time.After(2 * time.Second):
		t.Error("Keys not closed within 2 s of Leave")
	}
	from := b.count()
	b.packets(from, 5) // b still gets its stream
	if _, err := c.Join("a", a.addr(), g711.PCMU, 101); err != nil {
		t.Errorf("rejoining after Leave: %v", err)
	}
}

// Close stops the mixing goroutine and every participant: sockets closed,
// Keys closed, Play and Join refused, no goroutine left behind.
func TestCloseStopsEverything(t *testing.T) {
	phones := []*phone{newPhone(t, g711.PCMU), newPhone(t, g711.PCMA), newPhone(t, g711.PCMU)}
	before := runtime.NumGoroutine()
	b := newBridges(t)
	c, err := b.Open("conf-close")
	if err != nil {
		t.Fatal(err)
	}
	var parts []*Participant
	for i, ph := range phones {
		parts = append(parts, ph.join(c, fmt.Sprint("p", i)))
	}
	played := make(chan error, 1)
	go func() { played <- c.Play(context.Background(), "main-menu") }()
	phones[0].packets(0, 5)
	c.Close()
	c.Close()
	if err := <-played; !errors.Is(err, ErrClosed) {
		t.Errorf("Play cut by Close = %v, want ErrClosed", err)
	}
	for _, p := range parts {
		if _, ok := <-p.Keys(); ok {
			t.Error("a key after Close")
		}
		if !portFree(p.Addr()) {
			t.Errorf("participant %s's port still held after Close", p.ID())
		}
	}
	if _, err := c.Join("late", phones[0].addr(), g711.PCMU, 101); !errors.Is(err, ErrClosed) {
		t.Errorf("Join after Close = %v, want ErrClosed", err)
	}
	if err := c.Play(context.Background(), "beep"); !errors.Is(err, ErrClosed) {
		t.Errorf("Play after Close = %v, want ErrClosed", err)
	}
	if _, ok := b.Lookup("conf-close"); ok {
		t.Error("a closed conference is still listed")
	}
	waitFor(t, "goroutines back to where they were", func() bool { return runtime.NumGoroutine() <= before })
	c2 := open(t, b, "conf-close") // the id is free again
	if _, err := b.Open("conf-close"); !errors.Is(err, ErrExists) {
		t.Errorf("Open of an open id = %v, want ErrExists", err)
	}
	if got, ok := b.Lookup("conf-close"); !ok || got != c2 {
		t.Error("Lookup does not find the open conference")
	}
}

func TestJoinChecks(t *testing.T) {
	if _, err := New(Config{}); err == nil {
		t.Error("New without an IP or prompts succeeded")
	}
	c := open(t, newBridges(t), "conf-checks")
	ph := newPhone(t, g711.PCMU)
	ph.join(c, "a")
	for _, tc := range []struct {
		name   string
		id     string
		codec  g711.Codec
		dtmfPT uint8
		is     error
	}{
		{"a codec other than G.711", "b", g711.Codec(18), 101, nil},
		{"telephone-events on the codec's payload type", "b", g711.PCMA, 8, nil},
		{"a payload type over 127", "b", g711.PCMA, 200, nil},
		{"an id already in", "a", g711.PCMU, 101, ErrExists},
	} {
		_, err := c.Join(tc.id, ph.addr(), tc.codec, tc.dtmfPT)
		if err == nil || (tc.is != nil && !errors.Is(err, tc.is)) {
			t.Errorf("Join with %s = %v, want an error", tc.name, err)
		}
	}
	if _, err := c.Join("c", netip.AddrPort{}, g711.PCMU, 0); err == nil {
		t.Error("Join without a peer succeeded")
	}
}

// portFree reports whether addr can be bound.
func portFree(addr netip.AddrPort) bool {
	conn, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(addr))
	if err != nil {
		return false
	}
	conn.Close()
	return true
}
