package dtmf

import (
	"slices"
	"testing"
	"time"

	"github.com/pion/rtp"
)

const pt = 101

// stream turns key presses into the RTP packets a sender would send: keys
// 200 ms apart, packets every 20 ms, ssrc 0x1234.
type stream struct {
	seq  uint16
	ts   uint32
	t0   time.Time
	ssrc uint32
}

type timed struct {
	p  *rtp.Packet
	at time.Time
}

func newStream(ts uint32) *stream {
	return &stream{seq: 1000, ts: ts, t0: time.Unix(1000, 0), ssrc: 0x1234}
}

// key returns the packets of one key press starting at start.
func (s *stream) key(t *testing.T, key byte, start time.Duration) []timed {
	t.Helper()
	pk, err := Sender{Interval: 20 * time.Millisecond}.Packets(key)
	if err != nil {
		t.Fatal(err)
	}
	ts := s.ts + uint32(start/time.Millisecond)*8
	var out []timed
	for _, p := range pk {
		out = append(out, timed{
			p: &rtp.Packet{
				Header:  rtp.Header{Version: 2, Marker: p.Marker, PayloadType: pt, SequenceNumber: s.seq, Timestamp: ts, SSRC: s.ssrc},
				Payload: p.Event.AppendTo(nil),
			},
			at: s.t0.Add(start + p.Offset),
		})
		s.seq++
	}
	return out
}

func (s *stream) keys(t *testing.T, keys string) []timed {
	var out []timed
	for i := range len(keys) {
		out = append(out, s.key(t, keys[i], time.Duration(i)*200*time.Millisecond)...)
	}
	return out
}

func feed(r *Receiver, in []timed) []Digit {
	var out []Digit
	for _, p := range in {
		out = r.Feed(out, p.p, p.at)
	}
	return out
}

func keysOf(ds []Digit) string {
	var b []byte
	for _, d := range ds {
		b = append(b, d.Key)
	}
	return string(b)
}

func dropEnds(in []timed) []timed {
	return slices.DeleteFunc(slices.Clone(in), func(p timed) bool {
		e, _ := ParseEvent(p.p.Payload)
		return e.End
	})
}

func TestReceiverClean(t *testing.T) {
	s := newStream(5000)
	got := feed(NewReceiver(ReceiverConfig{PayloadType: pt}), s.keys(t, "1#"))
	want := []Digit{
		{Key: '1', Duration: 100 * time.Millisecond, Volume: DefaultVolume, Timestamp: 5000, Ended: true},
		{Key: '#', Duration: 100 * time.Millisecond, Volume: DefaultVolume, Timestamp: 5000 + 1600, Ended: true},
	}
	if !slices.Equal(got, want) {
		t.Errorf("got %+v\nwant %+v", got, want)
	}
}

func TestReceiverImpairments(t *testing.T) {
	cases := []struct {
		name  string
		keys  string
		alter func(in []timed) []timed
		want  string
	}{
		{"duplicates", "123", func(in []timed) []timed {
			var out []timed
			for _, p := range in {
				out = append(out, p, p)
			}
			return out
		}, "123"},
		{"same key twice", "55", nil, "55"},
		{"lost end packets, next key ends it", "12", func(in []timed) []timed {
			return dropEnds(in)
		}, "1"}, // the last key is still down: see the timeout test
		{"lost start", "9", func(in []timed) []timed { return in[3:] }, "9"},
		{"only the last end packet", "4", func(in []timed) []timed { return in[len(in)-1:] }, "4"},
		{"reordered neighbours", "678", func(in []timed) []timed {
			out := slices.Clone(in)
			for i := 0; i+1 < len(out); i += 2 {
				out[i], out[i+1] = out[i+1], out[i]
			}
			return out
		}, "678"},
		{"end packets arrive after the next key started", "12", func(in []timed) []timed {
			ends := slices.Clone(in[5:8]) // the end packets of '1'
			out := slices.Delete(slices.Clone(in), 5, 8)
			return slices.Insert(out, 7, ends...)
		}, "12"},
		{"late update of an ended key", "3", func(in []timed) []timed {
			return append(slices.Clone(in), in[2])
		}, "3"},
		{"audio between", "0*", func(in []timed) []timed {
			var out []timed
			for _, p := range in {
				audio := *p.p
				audio.PayloadType = 0
				audio.Payload = make([]byte, 160)
				out = append(out, timed{&audio, p.at}, p)
			}
			return out
		}, "0*"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			in := newStream(0xFFFFF000).keys(t, c.keys) // the timestamps wrap
			if c.alter != nil {
				in = c.alter(in)
			}
			if got := keysOf(feed(NewReceiver(ReceiverConfig{PayloadType: pt}), in)); got != c.want {
				t.Errorf("keys %q, want %q", got, c.want)
			}
		})
	}
}

func TestReceiverTimeout(t *testing.T) {
	s := newStream(0)
	in := dropEnds(s.key(t, '7', 0))
	r := NewReceiver(ReceiverConfig{PayloadType: pt, Timeout: 300 * time.Millisecond})
	if got := feed(r, in); len(got) != 0 {
		t.Fatalf("reported %+v before the timeout", got)
	}
	if k, ok := r.Pressed(); !ok || k != '7' {
		t.Errorf("Pressed() = %q, %v, want '7'", k, ok)
	}
	last := in[len(in)-1].at
	if got := r.Expire(nil, last.Add(299*time.Millisecond)); len(got) != 0 {
		t.Fatalf("reported %+v before the timeout", got)
	}
	got := r.Expire(nil, last.Add(300*time.Millisecond))
	if len(got) != 1 || got[0].Key != '7' || got[0].Ended || got[0].Duration != 80*time.Millisecond {
		t.Fatalf("after the timeout got %+v, want '7' not ended, 80 ms", got)
	}
	// The end packets arriving now change nothing.
	if got := feed(r, s.key(t, '7', 0)[5:]); len(got) != 0 {
		t.Errorf("late end packets reported %+v", got)
	}
	if _, ok := r.Pressed(); ok {
		t.Error("a key is still pressed")
	}
}

func TestReceiverSSRCChange(t *testing.T) {
	s := newStream(100)
	in := dropEnds(s.key(t, '2', 0))
	s.ssrc, s.ts = 0x9999, 100 // a new stream that reuses the timestamps
	in = append(in, s.key(t, '2', time.Second)...)
	got := feed(NewReceiver(ReceiverConfig{PayloadType: pt}), in)
	if keysOf(got) != "22" || got[0].Ended || !got[1].Ended {
		t.Errorf("got %+v, want '2' ended by the new SSRC then '2'", got)
	}
}

func TestReceiverNotDTMF(t *testing.T) {
	s := newStream(0)
	in := s.key(t, '1', 0)
	for _, p := range in {
		p.p.Payload[0] = 16 // flash
	}
	r := NewReceiver(ReceiverConfig{PayloadType: pt})
	if got := feed(r, in); len(got) != 0 {
		t.Errorf("flash reported as %+v", got)
	}
	short := &rtp.Packet{Header: rtp.Header{PayloadType: pt, SSRC: 0x1234}, Payload: []byte{1}}
	if got := r.Feed(nil, short, time.Unix(2000, 0)); len(got) != 0 {
		t.Errorf("short payload reported %+v", got)
	}
}

func TestReceiverLongEvent(t *testing.T) {
	// A key held for 10 s: a first segment ending at 0xFFFF units without
	// the end bit, then a second segment starting 0xFFFF later.
	t0 := time.Unix(1000, 0)
	pk := func(ts uint32, dur uint16, end bool, at time.Duration) timed {
		e := Event{Code: 3, End: end, Volume: 12, Duration: dur}
		return timed{&rtp.Packet{Header: rtp.Header{PayloadType: pt, SSRC: 1, Timestamp: ts}, Payload: e.AppendTo(nil)}, t0.Add(at)}
	}
	var in []timed
	for u := 0; u < 0xFFFF; u += 400 {
		in = append(in, pk(1000, uint16(u), false, time.Duration(u)*time.Second/8000))
	}
	seg := time.Duration(0xFFFF) * time.Second / 8000
	in = append(in, pk(1000, 0xFFFF, false, seg))
	for u := 0; u < 14465; u += 400 {
		in = append(in, pk(1000+0xFFFF, uint16(u), false, seg+time.Duration(u)*time.Second/8000))
	}
	in = append(in, pk(1000+0xFFFF, 14465, true, 10*time.Second))
	got := feed(NewReceiver(ReceiverConfig{PayloadType: pt}), in)
	if len(got) != 1 || got[0].Key != '3' || got[0].Duration != 10*time.Second || got[0].Timestamp != 1000 {
		t.Errorf("got %+v, want one '3' of 10 s", got)
	}
}

// FuzzReceiver feeds arbitrary event packets: it must not panic, and never
// report more key presses than there were distinct events (timestamp and
// code), counting again an event whose packet came maxBackwards or more
// behind the newest timestamp (a stream that restarted its timestamps:
// its events are new ones).
func FuzzReceiver(f *testing.F) {
	f.Add([]byte{0, 0, 0, 5, 0, 0x0a, 0, 0, 0, 0, 0, 5, 0, 0x8a, 3, 0x20})
	f.Add([]byte{0, 0, 0, 5, 1, 0x0a, 0, 160, 0, 0, 1, 5, 2, 0x8a, 0, 160, 0, 0, 0, 5, 1, 0x8a, 3, 0x20})
	f.Add([]byte{0xff, 0xff, 0xff, 0xf0, 11, 0, 0, 0, 0, 0, 0, 0x10, 11, 0x80, 0, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		r := NewReceiver(ReceiverConfig{PayloadType: pt, Timeout: 100 * time.Millisecond})
		now := time.Unix(0, 0)
		type start struct {
			ts   uint32
			code uint8
		}
		starts := map[start]bool{}
		restarts := 0
		var got []Digit
		var newest uint32
		for i := 0; len(b) >= 8; i++ {
			ts := uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
			p := &rtp.Packet{Header: rtp.Header{PayloadType: pt, SSRC: 7, Timestamp: ts}, Payload: b[4:8]}
			starts[start{ts, b[4]}] = true
			if back := newest - ts; i > 0 && back >= maxBackwards && back < 1<<31 {
				restarts++
			} else if i == 0 || ts-newest < 1<<31 {
				newest = ts
			}
			now = now.Add(time.Duration(b[7]) * time.Millisecond)
			got = r.Feed(got, p, now)
			b = b[8:]
		}
		got = r.Expire(got, now.Add(time.Hour))
		if len(got) > len(starts)+restarts {
			t.Fatalf("%d key presses from %d events and %d restarts", len(got), len(starts), restarts)
		}
		for _, d := range got {
			code, ok := Code(d.Key)
			if !ok || !starts[start{d.Timestamp, code}] {
				t.Fatalf("reported %+v", d)
			}
		}
	})
}

// A stream that sends many codes at one timestamp (no sender should)
// still has each reported once: an end packet repeated after more events
// than the receiver's ring of recent ones is a duplicate, not a new press.
func TestManyCodesAtOneTimestamp(t *testing.T) {
	r := NewReceiver(ReceiverConfig{PayloadType: pt})
	at := time.Unix(0, 0)
	packet := func(code uint8) *rtp.Packet {
		ev := Event{Code: code, End: true, Duration: 800}
		return &rtp.Packet{Header: rtp.Header{PayloadType: pt, SSRC: 7, Timestamp: 1000}, Payload: ev.AppendTo(nil)}
	}
	var got []Digit
	for code := range uint8(12) {
		got = r.Feed(got, packet(code), at)
	}
	for code := range uint8(12) { // every end packet again
		got = r.Feed(got, packet(code), at)
	}
	if keysOf(got) != "0123456789*#" {
		t.Errorf("keys %q, want each of 0123456789*# once", keysOf(got))
	}
}
