package player

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/outpost-voice/outpost/appliance/media/dtmf"
	"github.com/outpost-voice/outpost/appliance/media/g711"
	"github.com/outpost-voice/outpost/appliance/media/prompts"
)

// TestDecodesToWAV is the issue's "generated RTP decoded back equals the
// WAV": a built-in prompt played as PCMU and as PCMA, decoded from the
// packets, equals the WAV's samples after G.711 quantisation, sample for
// sample, the last packet padded with silence; sequence numbers and
// timestamps advance by 1 and 160 from a random start, and only the first
// packet of each prompt has the marker bit.
func TestDecodesToWAV(t *testing.T) {
	menu, err := prompts.Builtin("main-menu")
	if err != nil {
		t.Fatal(err)
	}
	beep, err := prompts.Builtin("beep")
	if err != nil {
		t.Fatal(err)
	}
	for _, codec := range []g711.Codec{g711.PCMU, g711.PCMA} {
		t.Run(codec.String(), func(t *testing.T) {
			p, clk := newClock(t)
			var w capture
			s, err := p.Start(&w, SessionConfig{Codec: codec})
			if err != nil {
				t.Fatal(err)
			}
			pb := s.Play(Audio(menu.Samples), Audio(beep.Samples))
			clk.run(menu.Duration() + beep.Duration() + time.Second)
			if err := pb.Err(); err != nil || !isDone(pb) {
				t.Fatalf("playback done %v err %v", isDone(pb), err)
			}
			pkts := w.packets()
			frames := func(n int) int { return (n + frameSamples - 1) / frameSamples }
			if want := frames(len(menu.Samples)) + frames(len(beep.Samples)); len(pkts) != want {
				t.Fatalf("%d packets, want %d", len(pkts), want)
			}
			checkStream(t, pkts, s.SSRC())
			var got []int16
			for i, pk := range pkts {
				if pk.PayloadType != codec.PayloadType() || len(pk.Payload) != frameSamples {
					t.Fatalf("packet %d: payload type %d, %d bytes", i, pk.PayloadType, len(pk.Payload))
				}
				if i > 0 && pk.Timestamp != pkts[i-1].Timestamp+frameSamples {
					t.Fatalf("packet %d: timestamp %d after %d", i, pk.Timestamp, pkts[i-1].Timestamp)
				}
				wantMarker := i == 0 || i == frames(len(menu.Samples))
				if pk.Marker != wantMarker {
					t.Errorf("packet %d: marker %v", i, pk.Marker)
				}
				dec := make([]int16, frameSamples)
				codec.Decode(dec, pk.Payload)
				got = append(got, dec...)
			}
			var want []int16
			for _, pr := range []prompts.Prompt{menu, beep} {
				padded := make([]int16, frames(len(pr.Samples))*frameSamples)
				copy(padded, pr.Samples)
				want = append(want, quantise(codec, padded)...)
			}
			if i := firstDiff(got, want); i >= 0 {
				t.Fatalf("sample %d: decoded %d, want %d", i, got[i], want[i])
			}
			// The timestamps map back to when each packet was due.
			for i, pk := range pkts[1:] {
				if d := s.DueTime(pk.Timestamp).Sub(s.DueTime(pkts[0].Timestamp)); d != time.Duration(i+1)*frameDur {
					t.Fatalf("packet %d due %v after the first", i+1, d)
				}
			}
		})
	}
}

func quantise(c g711.Codec, s []int16) []int16 {
	b := make([]byte, len(s))
	c.Encode(b, s)
	out := make([]int16, len(s))
	c.Decode(out, b)
	return out
}

func firstDiff(a, b []int16) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	if len(a) != len(b) {
		return min(len(a), len(b))
	}
	return -1
}

func isDone(pb *Playback) bool {
	select {
	case <-pb.Done():
		return true
	default:
		return false
	}
}

// TestPacing: every packet leaves when it is due; a player that wakes
// 130 ms late sends nothing twice, skips nothing, and catches up in
// bursts of at most MaxBurst.
func TestPacing(t *testing.T) {
	p, clk := newClock(t)
	var w capture
	w.now = &clk.now
	s, err := p.Start(&w, SessionConfig{Codec: g711.PCMU, IdleSilence: true})
	if err != nil {
		t.Fatal(err)
	}
	clk.run(200 * time.Millisecond)
	for i, at := range w.at {
		if due := s.start + int64(i)*int64(frameDur); at != due {
			t.Fatalf("packet %d sent at %d, due %d", i, at, due)
		}
	}
	sent := len(w.at)
	clk.now += int64(130 * time.Millisecond) // the goroutine was descheduled
	clk.run(300 * time.Millisecond)
	pkts := w.packets()
	checkStream(t, pkts, s.SSRC())
	for i := 1; i < len(pkts); i++ {
		if pkts[i].Timestamp != pkts[i-1].Timestamp+frameSamples {
			t.Fatalf("packet %d: timestamp jumped from %d to %d", i, pkts[i-1].Timestamp, pkts[i].Timestamp)
		}
	}
	burst, late := 1, false
	for i := sent + 1; i < len(w.at); i++ {
		if w.at[i] == w.at[i-1] {
			burst++
			if burst > DefaultMaxBurst {
				t.Fatalf("packets %d-%d sent at once", i-burst+1, i)
			}
		} else {
			burst = 1
		}
		if w.at[i] > s.start+int64(i)*int64(frameDur) {
			late = true
		}
	}
	if !late {
		t.Error("no packet was late: the test did not delay the player")
	}
	last := len(w.at) - 1
	if due := s.start + int64(last)*int64(frameDur); w.at[last] != due {
		t.Errorf("after catching up, packet %d sent at %d, due %d", last, w.at[last], due)
	}
	if p.Stats().Late == 0 {
		t.Error("Stats().Late = 0 after a late wake-up")
	}
}

func TestPlayStopClose(t *testing.T) {
	p, clk := newClock(t)
	var w capture
	s, _ := p.Start(&w, SessionConfig{Codec: g711.PCMA})
	clk.run(100 * time.Millisecond)
	if n := len(w.packets()); n != 0 {
		t.Fatalf("%d packets sent before Play without IdleSilence", n)
	}

	pb := s.Play(Silence(100 * time.Millisecond))
	clk.run(100 * time.Millisecond)
	if isDone(pb) {
		t.Fatal("done while its last packet is still playing")
	}
	clk.run(21 * time.Millisecond)
	if !isDone(pb) || pb.Err() != nil {
		t.Fatalf("done %v err %v after 121 ms", isDone(pb), pb.Err())
	}
	first := w.packets()
	if len(first) != 5 {
		t.Fatalf("%d packets of silence, want 5", len(first))
	}

	// Paused for a while: the next prompt's timestamps follow the clock.
	clk.run(time.Second)
	a := s.Play(Audio(make([]int16, 800)))
	b := s.Play(Silence(time.Second))
	clk.run(30 * time.Millisecond)
	s.Stop()
	if !errors.Is(a.Err(), ErrStopped) || !errors.Is(b.Err(), ErrStopped) {
		t.Errorf("after Stop: %v, %v, want ErrStopped", a.Err(), b.Err())
	}
	clk.run(200 * time.Millisecond)
	pkts := w.packets()
	if len(pkts) < 6 || len(pkts) > 7 {
		t.Fatalf("%d packets, want 6 or 7 (Stop after one or two)", len(pkts))
	}
	checkStream(t, pkts, s.SSRC())
	gap := pkts[5].Timestamp - first[4].Timestamp
	if gap < 8000 || gap%frameSamples != 0 || !pkts[5].Marker {
		t.Errorf("after a pause: timestamp +%d marker %v, want over 1 s of units, whole frames, marker", gap, pkts[5].Marker)
	}

	c := s.Play(Silence(time.Second))
	s.Close()
	if !errors.Is(c.Err(), ErrClosed) {
		t.Errorf("after Close: %v, want ErrClosed", c.Err())
	}
	n := len(w.packets())
	clk.run(100 * time.Millisecond)
	if len(w.packets()) != n {
		t.Error("packets sent after Close")
	}
	if d := s.Play(Silence(time.Second)); !errors.Is(d.Err(), ErrClosed) {
		t.Errorf("Play after Close: %v, want ErrClosed", d.Err())
	}
	if err := s.Play().Wait(context.Background()); !errors.Is(err, ErrClosed) {
		t.Errorf("Wait = %v", err)
	}
	if p.Stats().Sessions != 0 {
		t.Errorf("%d sessions after Close", p.Stats().Sessions)
	}
}

// TestDigits sends keys between prompts; a dtmf.Receiver reads them back.
func TestDigits(t *testing.T) {
	p, clk := newClock(t)
	var w capture
	s, _ := p.Start(&w, SessionConfig{Codec: g711.PCMU, DTMFPayloadType: 96})
	keys, err := Digits("1#9")
	if err != nil {
		t.Fatal(err)
	}
	pb := s.Play(Silence(40*time.Millisecond), keys, Audio(make([]int16, 320)))
	clk.run(keys.Duration() + time.Second)
	if !isDone(pb) {
		t.Fatal("not done")
	}
	pkts := w.packets()
	checkStream(t, pkts, s.SSRC())
	rx := dtmf.NewReceiver(dtmf.ReceiverConfig{PayloadType: 96})
	var got []dtmf.Digit
	at := time.Unix(0, 0)
	events := 0
	for i := range pkts {
		pk := &pkts[i]
		if pk.PayloadType == 96 {
			events++
			ev, _ := dtmf.ParseEvent(pk.Payload)
			if pk.Marker != (ev.Duration == 0 && !ev.End) {
				t.Errorf("packet %d: marker %v on %+v", i, pk.Marker, ev)
			}
		}
		got = rx.Feed(got, pk, at)
		at = at.Add(frameDur)
	}
	if events != 3*8 {
		t.Errorf("%d event packets, want 24", events)
	}
	if len(got) != 3 || got[0].Key != '1' || got[1].Key != '#' || got[2].Key != '9' || !got[2].Ended || got[2].Duration != KeyDuration {
		t.Errorf("received %+v, want 1 # 9 ended, 100 ms each", got)
	}
	// Each key's timestamp is that of the frame it started in.
	if got[0].Timestamp != pkts[2].Timestamp {
		t.Errorf("first key timestamp %d, want the third frame's %d", got[0].Timestamp, pkts[2].Timestamp)
	}
	if last := pkts[len(pkts)-2]; !last.Marker || last.PayloadType != 0 {
		t.Errorf("audio after the keys: marker %v pt %d", last.Marker, last.PayloadType)
	}
	if _, err := Digits("12x"); err == nil {
		t.Error("Digits(12x) succeeded")
	}
}

// TestStopDuringKey: Stop in the middle of a key press still sends its
// end packets; Stop between two keys sends nothing more.
func TestStopDuringKey(t *testing.T) {
	// "55": the first key's packets at 0-140 ms, silence at 160-240 ms,
	// the second key from 260 ms.
	for _, c := range []struct {
		stopAt  time.Duration
		packets int // event packets sent
	}{
		{50 * time.Millisecond, 8},
		{250 * time.Millisecond, 8},
		{270 * time.Millisecond, 16},
	} {
		p, clk := newClock(t)
		var w capture
		s, _ := p.Start(&w, SessionConfig{Codec: g711.PCMU})
		keys, _ := Digits("55")
		s.Play(keys)
		clk.runUntil(s.start + int64(c.stopAt))
		s.Stop()
		clk.run(time.Second)
		rx := dtmf.NewReceiver(dtmf.ReceiverConfig{PayloadType: DefaultDTMFPayloadType})
		var got []dtmf.Digit
		ends, events := 0, 0
		for _, pk := range w.packets() {
			if pk.PayloadType != DefaultDTMFPayloadType {
				continue
			}
			events++
			if ev, _ := dtmf.ParseEvent(pk.Payload); ev.End {
				ends++
			}
			got = rx.Feed(got, &pk, time.Unix(0, 0))
		}
		for _, d := range got {
			if !d.Ended {
				t.Errorf("stop at %v: key %+v not ended", c.stopAt, d)
			}
		}
		if events != c.packets || ends != 3*(c.packets/8) || len(got) != c.packets/8 {
			t.Errorf("stop at %v: %d event packets (%d end), keys %+v; want %d packets", c.stopAt, events, ends, got, c.packets)
		}
	}
}

func TestStartErrors(t *testing.T) {
	p, _ := newClock(t)
	var w capture
	for _, cfg := range []SessionConfig{{Codec: 9}, {Codec: g711.PCMA, DTMFPayloadType: 8}, {Codec: g711.PCMU, DTMFPayloadType: 200}} {
		if _, err := p.Start(&w, cfg); err == nil {
			t.Errorf("Start(%+v) succeeded", cfg)
		}
	}
	if _, err := p.Start(nil, SessionConfig{}); err == nil {
		t.Error("Start(nil writer) succeeded")
	}
	go p.run()
	p.Close()
	if _, err := p.Start(&w, SessionConfig{}); !errors.Is(err, ErrPlayerClosed) {
		t.Errorf("Start after Close: %v", err)
	}
}

func TestWriteErrors(t *testing.T) {
	p, clk := newClock(t)
	w := capture{fail: true}
	s, _ := p.Start(&w, SessionConfig{Codec: g711.PCMU})
	pb := s.Play(Silence(60 * time.Millisecond))
	clk.run(time.Second)
	if !isDone(pb) || s.Stats().WriteErrors != 3 || p.Stats().WriteErrors != 3 || s.Stats().Packets != 0 {
		t.Errorf("done %v, stats %+v %+v", isDone(pb), s.Stats(), p.Stats())
	}
}

// TestSpread: sessions started together are spread over the frame.
func TestSpread(t *testing.T) {
	p, _ := newClock(t)
	var w capture
	for range 3 * phases {
		if _, err := p.Start(&w, SessionConfig{Codec: g711.PCMU}); err != nil {
			t.Fatal(err)
		}
	}
	for i, n := range p.perPhase {
		if n != 3 {
			t.Errorf("phase %d has %d sessions, want 3", i, n)
		}
	}
}

func TestNoAllocs(t *testing.T) {
	p, clk := newClock(t)
	var w nopWriter
	menu, _ := prompts.Builtin("main-menu")
	for range 50 {
		s, _ := p.Start(w, SessionConfig{Codec: g711.PCMA, IdleSilence: true})
		s.Play(Audio(menu.Samples))
	}
	clk.run(100 * time.Millisecond)
	allocs := testing.AllocsPerRun(100, func() {
		clk.run(frameDur)
	})
	if allocs != 0 {
		t.Errorf("%.1f allocations per frame of 50 sessions, want 0", allocs)
	}
}

type nopWriter struct{}

func (nopWriter) WritePacket([]byte) error { return nil }

// TestRealClock runs the pacing goroutine for real: 50 sessions play a
// beep and finish in about its duration.
func TestRealClock(t *testing.T) {
	p := New(Config{})
	defer p.Close()
	beep, _ := prompts.Builtin("beep")
	var pbs []*Playback
	var caps []*capture
	for range 50 {
		w := &capture{}
		s, err := p.Start(w, SessionConfig{Codec: g711.PCMU})
		if err != nil {
			t.Fatal(err)
		}
		caps = append(caps, w)
		pbs = append(pbs, s.Play(Audio(beep.Samples)))
	}
	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for _, pb := range pbs {
		if err := pb.Wait(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if el := time.Since(start); el < beep.Duration() || el > beep.Duration()+3*time.Second {
		t.Errorf("played a %v beep in %v", beep.Duration(), el)
	}
	for _, w := range caps {
		if n := len(w.packets()); n != 15 {
			t.Fatalf("%d packets, want 15", n)
		}
	}
	if got := p.Stats().Packets; got != 50*15 {
		t.Errorf("Stats().Packets = %d", got)
	}
}
