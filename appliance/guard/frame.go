package guard

import "bytes"

// framer follows the message boundaries of a SIP stream (RFC 3261 §18.3):
// a message is a start line and headers up to an empty line, then
// Content-Length bytes of body. It keeps no message, only where the
// stream is, so a connection can count messages and time each one. It
// trusts sipgo to refuse what is malformed or too large (the connection is
// then closed): a message it cannot follow only makes its count and
// deadlines approximate.
type framer struct {
	state   frameState
	line    [contentLengthLineMax]byte // the start of the current header line
	kept    int                        // bytes of it in line
	lineLen int                        // its full length so far
	clen    int                        // the message's Content-Length
	remain  int                        // body bytes still to come
}

type frameState int

const (
	betweenMessages frameState = iota // only CRLF keep-alives (RFC 5626 §3.5.1) so far
	inHeaders
	inBody
)

// contentLengthLineMax is the longest header line read for a
// Content-Length; longer lines are not one.
const contentLengthLineMax = 64

// maxContentLength caps a Content-Length read; sipgo refuses anything
// near it (its messages are at most 64 KiB).
const maxContentLength = 1 << 30

// inMessage reports whether a message has begun and not ended.
func (f *framer) inMessage() bool { return f.state != betweenMessages }

// feed follows data. start is called when a message begins (its first
// byte); a non-nil error from it stops feed and is returned. end is called
// when a message is complete.
func (f *framer) feed(data []byte, start func() error, end func()) error {
	for i := 0; i < len(data); {
		switch f.state {
		case betweenMessages:
			if b := data[i]; b == '\r' || b == '\n' {
				i++
				continue
			}
			if err := start(); err != nil {
				return err
			}
			f.state, f.clen, f.kept, f.lineLen = inHeaders, 0, 0, 0
		case inHeaders:
			j := bytes.IndexByte(data[i:], '\n')
			part := data[i:]
			if j >= 0 {
				part = data[i : i+j]
			}
			n := copy(f.line[f.kept:], part)
			f.kept += n
			f.lineLen += len(part)
			if j < 0 {
				i = len(data)
				continue
			}
			i += j + 1
			empty := f.lineLen == 0 || f.lineLen == 1 && f.line[0] == '\r'
			line := bytes.TrimSuffix(f.line[:f.kept], []byte("\r"))
			f.kept, f.lineLen = 0, 0
			if empty {
				if f.clen > 0 {
					f.state, f.remain = inBody, f.clen
				} else {
					f.state = betweenMessages
					end()
				}
				continue
			}
			if n, ok := contentLength(line); ok {
				f.clen = n
			}
		case inBody:
			n := min(f.remain, len(data)-i)
			f.remain -= n
			i += n
			if f.remain == 0 {
				f.state = betweenMessages
				end()
			}
		}
	}
	return nil
}

// contentLength reads a Content-Length (or compact l) header line.
func contentLength(line []byte) (int, bool) {
	colon := bytes.IndexByte(line, ':')
	if colon < 0 {
		return 0, false
	}
	name := bytes.TrimRight(line[:colon], " \t")
	if !bytes.EqualFold(name, []byte("content-length")) && !bytes.EqualFold(name, []byte("l")) {
		return 0, false
	}
	v := bytes.TrimSpace(line[colon+1:])
	if len(v) == 0 {
		return 0, false
	}
	n := 0
	for _, c := range v {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int(c-'0')
		if n > maxContentLength {
			return maxContentLength, true
		}
	}
	return n, true
}
