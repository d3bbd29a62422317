package calls

import (
	"strings"
	"testing"
)

func desc(origin, direction string) []byte {
	return []byte("v=0\r\no=" + origin + "\r\ns=-\r\nc=IN IP4 192.0.2.1\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\na=" + direction + "\r\n")
}

func originOf(t *testing.T, body []byte) string {
	t.Helper()
	_, _, f := findOrigin(body)
	if f == nil {
		t.Fatalf("no origin in %q", body)
	}
	return string(f[0]) + " " + string(f[1]) + " " + string(f[2]) + " " + string(f[5])
}

// A leg keeps the origin of the first description it was sent; the version
// grows only when the description changes, whoever it came from.
func TestOriginPresent(t *testing.T) {
	var o origin
	steps := []struct {
		in   []byte
		want string
	}{
		{desc("alice 10 5 IN IP4 192.0.2.1", "sendrecv"), "alice 10 5 192.0.2.1"}, // first: unchanged
		{desc("alice 10 5 IN IP4 192.0.2.1", "sendrecv"), "alice 10 5 192.0.2.1"}, // same again: same version
		{desc("alice 10 6 IN IP4 192.0.2.1", "sendonly"), "alice 10 6 192.0.2.1"}, // hold
		{desc("carol 77 1 IN IP4 192.0.2.9", "sendrecv"), "alice 10 7 192.0.2.1"}, // after a transfer: another phone's
		{desc("carol 77 1 IN IP4 192.0.2.9", "sendrecv"), "alice 10 7 192.0.2.1"},
	}
	for i, s := range steps {
		out := o.present(s.in)
		if got := originOf(t, out); got != s.want {
			t.Errorf("step %d: origin %q, want %q", i, got, s.want)
		}
		if rest := strings.SplitN(string(out), "\r\n", 3)[2]; !strings.HasSuffix(string(s.in), rest) {
			t.Errorf("step %d: the rest of the description changed: %q", i, out)
		}
	}
	for _, body := range [][]byte{nil, []byte("not sdp"), []byte("v=0\r\no=short line\r\n")} {
		if got := o.present(body); string(got) != string(body) {
			t.Errorf("present(%q) = %q, want it unchanged", body, got)
		}
	}
}

func TestSendRecv(t *testing.T) {
	for _, dir := range []string{"sendonly", "recvonly", "inactive", "sendrecv"} {
		got := string(sendRecv(desc("a 1 1 IN IP4 192.0.2.1", dir)))
		if !strings.Contains(got, "a=sendrecv\r\n") || strings.Count(got, "a=") != 1 {
			t.Errorf("%s: %q", dir, got)
		}
	}
	if got := sendRecv([]byte("a=sendonly\nb=x\n")); string(got) != "a=sendrecv\nb=x\n" {
		t.Errorf("LF endings: %q", got)
	}
	if got := sendRecv(nil); got != nil {
		t.Errorf("nil: %q", got)
	}
}
