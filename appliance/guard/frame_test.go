package guard

import (
	"errors"
	"strings"
	"testing"
)

const (
	optionsMsg = "OPTIONS sip:n SIP/2.0\r\nVia: SIP/2.0/TCP h;branch=z9hG4bK1\r\nCall-ID: a\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n"
	inviteMsg  = "INVITE sip:n SIP/2.0\r\nCall-ID: b\r\nCSeq: 1 INVITE\r\nl :  5\r\n\r\nv=0\r\n"
	longHdrMsg = "MESSAGE sip:n SIP/2.0\r\nSubject: " // + a long value, then
)

// frames feeds s to a framer in chunks of size and returns how many
// messages began and ended.
func frames(s string, size int) (starts, ends int, f framer) {
	for i := 0; i < len(s); i += size {
		_ = f.feed([]byte(s[i:min(i+size, len(s))]), func() error { starts++; return nil }, func() { ends++ })
	}
	return starts, ends, f
}

func TestFramerCountsMessages(t *testing.T) {
	long := longHdrMsg + strings.Repeat("x", 5000) + "\r\nContent-Length: 3\r\n\r\nabc"
	stream := "\r\n\r\n" + optionsMsg + inviteMsg + "\r\n\r\n" + long + optionsMsg
	for _, size := range []int{1, 2, 3, 7, 64, 1000, len(stream)} {
		starts, ends, f := frames(stream, size)
		if starts != 4 || ends != 4 || f.inMessage() {
			t.Errorf("chunks of %d: %d begun, %d ended, in a message %v; want 4, 4, false", size, starts, ends, f.inMessage())
		}
	}
}

func TestFramerIncompleteMessages(t *testing.T) {
	for name, s := range map[string]string{
		"headers": optionsMsg[:40],
		"no end":  strings.TrimSuffix(optionsMsg, "\r\n"),
		"body":    inviteMsg[:len(inviteMsg)-2],
		"slow":    "OPTIONS sip:n SIP/2.0\r\nX-Slow: a\r\nX-Slow: b\r\n",
	} {
		starts, ends, f := frames(s, 5)
		if starts != 1 || ends != 0 || !f.inMessage() {
			t.Errorf("%s: %d begun, %d ended, in a message %v; want 1, 0, true", name, starts, ends, f.inMessage())
		}
	}
	if _, _, f := frames("\r\n\r\n\r\n", 1); f.inMessage() {
		t.Error("keep-alives begin a message")
	}
}

func TestFramerStopsAtRefusal(t *testing.T) {
	var f framer
	n := 0
	stop := errors.New("stop")
	err := f.feed([]byte(optionsMsg+optionsMsg+optionsMsg), func() error {
		n++
		if n == 2 {
			return stop
		}
		return nil
	}, func() {})
	if !errors.Is(err, stop) || n != 2 {
		t.Fatalf("feed = %v after %d starts, want stop after 2", err, n)
	}
}

func TestContentLength(t *testing.T) {
	for line, want := range map[string]int{
		"Content-Length: 12": 12, "content-length:0": 0, "l: 7": 7, "L :\t9 ": 9,
		"Content-Length: 99999999999999": maxContentLength,
	} {
		if got, ok := contentLength([]byte(line)); !ok || got != want {
			t.Errorf("contentLength(%q) = %d, %v; want %d", line, got, ok, want)
		}
	}
	for _, line := range []string{"Content-Type: 12", "Content-Length: x", "Content-Length:", "lx: 1", "Content-Length 3"} {
		if n, ok := contentLength([]byte(line)); ok {
			t.Errorf("contentLength(%q) = %d, want none", line, n)
		}
	}
}

func FuzzFramer(f *testing.F) {
	f.Add([]byte(optionsMsg+inviteMsg), uint8(3))
	f.Add([]byte("\r\n"+inviteMsg), uint8(1))
	f.Fuzz(func(t *testing.T, data []byte, size uint8) {
		step := int(size%64) + 1
		var whole, split framer
		var w, s int
		_ = whole.feed(data, func() error { w++; return nil }, func() {})
		for i := 0; i < len(data); i += step {
			_ = split.feed(data[i:min(i+step, len(data))], func() error { s++; return nil }, func() {})
		}
		if w != s || whole.state != split.state || whole.remain != split.remain {
			t.Fatalf("whole: %d messages, state %d; in chunks of %d: %d, state %d", w, whole.state, step, s, split.state)
		}
	})
}
