package dtmf

import (
	"errors"
	"fmt"
	"testing"
	"time"
)

func TestParseInfo(t *testing.T) {
	for _, c := range []struct {
		ct, body string
		key      byte
		dur      time.Duration
	}{
		{"application/dtmf-relay", "Signal=5\r\nDuration=160\r\n", '5', 160 * time.Millisecond},
		{"application/dtmf-relay", "Signal= #\nDuration= 250", '#', 250 * time.Millisecond},
		{"Application/DTMF-Relay; charset=utf-8", "signal=*\r\n", '*', 0},
		{"application/dtmf-relay", "Signal=11\r\nDuration=100", '#', 100 * time.Millisecond},
		{"application/dtmf-relay", "Signal=d\r\nDuration=100\r\nExtra=1", 'D', 100 * time.Millisecond},
		{"application/dtmf", "7", '7', 0},
		{"application/dtmf", " 10\r\n", '*', 0},
	} {
		d, err := ParseInfo(c.ct, []byte(c.body))
		if err != nil || d.Key != c.key || d.Duration != c.dur || !d.Ended {
			t.Errorf("ParseInfo(%q, %q) = %+v, %v, want key %q duration %v", c.ct, c.body, d, err, c.key, c.dur)
		}
	}
	for _, c := range []struct{ ct, body string }{
		{"application/sdp", "Signal=5"},
		{"", "Signal=5"},
		{"application/dtmf-relay", "Duration=160"},
		{"application/dtmf-relay", "Signal=16"},
		{"application/dtmf-relay", "Signal=!"},
		{"application/dtmf-relay", "Signal=5\r\nDuration=-1"},
		{"application/dtmf-relay", "Signal 5"},
		{"application/dtmf", ""},
		{"application/dtmf", "55"},
	} {
		if _, err := ParseInfo(c.ct, []byte(c.body)); !errors.Is(err, ErrPayload) {
			t.Errorf("ParseInfo(%q, %q) err = %v, want ErrPayload", c.ct, c.body, err)
		}
	}
}

func FuzzParseInfo(f *testing.F) {
	f.Add("application/dtmf-relay", []byte("Signal=5\r\nDuration=160"))
	f.Add("application/dtmf-relay", []byte("Signal=#\nDuration=100\n"))
	f.Add("application/dtmf", []byte("11"))
	f.Add("application/dtmf-relay;x=y", []byte("signal = A\r\n\r\nduration=0"))
	f.Fuzz(func(t *testing.T, ct string, body []byte) {
		d, err := ParseInfo(ct, body)
		if err != nil {
			if !errors.Is(err, ErrPayload) {
				t.Fatalf("error %v does not wrap ErrPayload", err)
			}
			return
		}
		if _, ok := Code(d.Key); !ok || d.Duration < 0 {
			t.Fatalf("parsed %+v", d)
		}
		// What was parsed, written back, parses the same.
		again, err := ParseInfo("application/dtmf-relay", fmt.Appendf(nil, "Signal=%c\r\nDuration=%d\r\n", d.Key, d.Duration.Milliseconds()))
		if err != nil || again != d {
			t.Fatalf("round trip of %+v = %+v, %v", d, again, err)
		}
	})
}
