package conference

import (
	"fmt"
	"strings"
	"testing"

	"github.com/outpost-voice/outpost/appliance/media/g711"
)

// code is the payload of test frame k: every sample the same µ-law code,
// distinct per k modulo 120.
func code(k uint16) []byte {
	b := make([]byte, frameSamples)
	for i := range b {
		b[i] = byte(0x80 + k%120) // positive codes of distinct levels
	}
	return b
}

// describe names what pull returned, among the frames inserted: "-"
// silence, "12" frame 12, "12^" frame 12 faded in, "12v" frame 12 faded
// out (a concealment).
func describe(t *testing.T, ok bool, got *frame, inserted []uint16) string {
	t.Helper()
	if !ok {
		return "-"
	}
	for _, k := range inserted {
		var f frame
		g711.PCMU.Decode(f[:], code(k))
		if *got == f {
			return fmt.Sprint(k)
		}
		up, down := f, f
		rampUp(&up)
		rampDown(&down)
		switch *got {
		case up:
			return fmt.Sprint(k, "^")
		case down:
			return fmt.Sprint(k, "v")
		}
	}
	t.Fatalf("pull returned an unknown frame %v", got[:8])
	return ""
}

// run plays a script on j: "i12" inserts frame 12 (SSRC 1), "s12" frame
// 12 of SSRC 2, "p" pulls; it returns what the pulls gave, space-separated.
func run(t *testing.T, j *jitter, script string) string {
	t.Helper()
	var out []string
	var inserted []uint16
	for _, op := range strings.Fields(script) {
		switch op[0] {
		case 'p':
			var f frame
			ok := j.pull(&f, g711.PCMU)
			out = append(out, describe(t, ok, &f, inserted))
		case 'i', 's':
			var seq uint16
			if _, err := fmt.Sscan(op[1:], &seq); err != nil {
				t.Fatal(err)
			}
			ssrc := uint32(1)
			if op[0] == 's' {
				ssrc = 2
			}
			j.insert(seq, ssrc, code(seq))
			inserted = append(inserted, seq)
		}
	}
	return strings.Join(out, " ")
}

func TestJitter(t *testing.T) {
	for _, tc := range []struct {
		name, script, want  string
		lost, late, dropped uint64
	}{
		{name: "in order, after two frames of prefill",
			script: "p i10 p i11 p i12 p i13 p",
			want:   "- - 10^ 11 12"},
		{name: "reordered before the start",
			script: "i11 i10 p p i12 p",
			want:   "10^ 11 12"},
		{name: "reordered while playing",
			script: "i10 i11 p i13 i12 p p p",
			want:   "10^ 11 12 13"},
		{name: "a lost frame is concealed and skipped; arriving later it is late",
			script: "i10 i11 p p i13 p i12 i14 p p",
			want:   "10^ 11 11v 13^ 14",
			lost:   1, late: 1},
		{name: "an underrun waits for the late frame",
			script: "i10 i11 p p p i12 p i13 p",
			want:   "10^ 11 11v 12^ 13"},
		{name: "a long underrun stops the stream, which prefills again",
			script: "i10 i11 p p p p p p i12 p i13 p p",
			want:   "10^ 11 11v - - - - 12^ 13"},
		{name: "a duplicate is dropped",
			script: "i10 i10 i11 p p",
			want:   "10^ 11",
			late:   1},
		{name: "more than three deep drops the oldest",
			script: "i10 i11 p i11 i12 i13 i14 p p p p",
			want:   "10^ 12 13 14 14v",
			late:   1, dropped: 1},
		{name: "a hole skipped to keep three deep is lost, not concealed",
			script: "i18 i19 p p i21 i22 i23 p p",
			want:   "18^ 19 21 22",
			lost:   1},
		{name: "a jump forward drops what is buffered before it and loses the rest",
			script: "i10 i11 i12 p p i16 p p p",
			want:   "10^ 11 11v - 16^",
			lost:   3, dropped: 1},
		{name: "a new SSRC restarts the stream",
			script:  "i10 i11 p i12 s500 s501 p p p",
			want:    "10^ 500^ 501 501v",
			dropped: 2},
		{name: "a sequence jump restarts the stream",
			script: "i10 i11 p p i900 p i901 p",
			want:   "10^ 11 - 900^"},
		{name: "sequence numbers wrap",
			script: "i65534 i65535 p i0 p i1 p p",
			want:   "65534^ 65535 0 1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var j jitter
			if got := run(t, &j, tc.script); got != tc.want {
				t.Errorf("pulls = %q, want %q", got, tc.want)
			}
			if got := j.lost.Load(); got != tc.lost {
				t.Errorf("lost = %d, want %d", got, tc.lost)
			}
			if got := j.late.Load(); got != tc.late {
				t.Errorf("late = %d, want %d", got, tc.late)
			}
			if got := j.dropped.Load(); got != tc.dropped {
				t.Errorf("dropped = %d, want %d", got, tc.dropped)
			}
		})
	}
}

func TestParseRTP(t *testing.T) {
	pkt := []byte{0x80, 0x88, 0x01, 0x02, 0, 0, 0x03, 0x20, 0xDE, 0xAD, 0xBE, 0xEF, 1, 2, 3}
	h, payload, ok := parseRTP(pkt)
	if !ok || h.pt != 8 || !h.marker || h.seq != 0x0102 || h.ts != 800 || h.ssrc != 0xDEADBEEF || string(payload) != "\x01\x02\x03" {
		t.Errorf("parseRTP = %+v %v %v", h, payload, ok)
	}
	// One CSRC, a one-word extension and two bytes of padding.
	pkt = []byte{0xB1, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1, 9, 9, 9, 9, 0xBE, 0xDE, 0, 1, 7, 7, 7, 7, 42, 0, 2}
	if _, payload, ok = parseRTP(pkt); !ok || string(payload) != "\x2a" {
		t.Errorf("parseRTP with CSRC, extension and padding = %v %v, want [42]", payload, ok)
	}
	for _, bad := range [][]byte{nil, {0x80, 0}, {0x40, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}, // too short; version 1
		{0x81, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0},    // a CSRC missing
		{0x90, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0},    // the extension missing
		{0xA0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 5}, // more padding than payload
	} {
		if _, _, ok := parseRTP(bad); ok {
			t.Errorf("parseRTP(%x) ok", bad)
		}
	}
}
