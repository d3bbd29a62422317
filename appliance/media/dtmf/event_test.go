package dtmf

import (
	"errors"
	"testing"
	"time"
)

func TestEvent(t *testing.T) {
	e := Event{Code: 11, End: true, Volume: 10, Duration: 800}
	b := e.AppendTo(nil)
	if want := []byte{11, 0x8A, 0x03, 0x20}; string(b) != string(want) {
		t.Fatalf("AppendTo = %x, want %x", b, want)
	}
	got, err := ParseEvent(b)
	if err != nil || got != e {
		t.Errorf("ParseEvent = %+v, %v, want %+v", got, err, e)
	}
	// The reserved bit is ignored; a volume over 63 is capped.
	if got, _ := ParseEvent([]byte{1, 0x40 | 0x05, 0, 0}); got.Volume != 5 || got.End {
		t.Errorf("reserved bit: got %+v", got)
	}
	if b := (Event{Volume: 200}).AppendTo(nil); b[1] != 63 {
		t.Errorf("volume 200 written as %d", b[1])
	}
	if _, err := ParseEvent([]byte{1, 2, 3}); !errors.Is(err, ErrPayload) {
		t.Errorf("short payload err = %v", err)
	}
}

func TestKeys(t *testing.T) {
	for code := range uint8(16) {
		k, ok := Key(code)
		if !ok {
			t.Fatalf("Key(%d) not ok", code)
		}
		if c, ok := Code(k); !ok || c != code {
			t.Errorf("Code(%q) = %d, want %d", k, c, code)
		}
	}
	if _, ok := Key(16); ok {
		t.Error("flash (16) is a key")
	}
	if c, ok := Code('d'); !ok || c != 15 {
		t.Errorf("Code('d') = %d, %v", c, ok)
	}
	if _, ok := Code('x'); ok {
		t.Error("Code('x') ok")
	}
}

func TestSender(t *testing.T) {
	pk, err := Sender{Interval: 20 * time.Millisecond, Duration: 90 * time.Millisecond}.Packets('#')
	if err != nil {
		t.Fatal(err)
	}
	// 90 ms rounds up to 100: updates at 0, 20, ..., 80 ms, then three end
	// packets at 100, 120, 140 ms.
	if len(pk) != 8 {
		t.Fatalf("%d packets, want 8", len(pk))
	}
	for i, p := range pk {
		wantEnd := i >= 5
		wantDur := uint16(160 * i)
		if wantEnd {
			wantDur = 800
		}
		if p.Offset != time.Duration(i)*20*time.Millisecond || p.Marker != (i == 0) || p.Event.End != wantEnd ||
			p.Event.Code != 11 || p.Event.Duration != wantDur || p.Event.Volume != DefaultVolume {
			t.Errorf("packet %d = %+v", i, p)
		}
	}
	def, _ := Sender{}.Packets('5')
	if len(def) != 2+EndPackets || def[2].Offset != 100*time.Millisecond {
		t.Errorf("default sender: %+v", def)
	}
	if _, err := (Sender{}).Packets('x'); !errors.Is(err, ErrPayload) {
		t.Errorf("Packets('x') err = %v", err)
	}
}
