package calls

import (
	"bytes"
	"strconv"
	"sync"
)

// Outpost passes session descriptions between the phones (media flows
// directly between them), but each phone sees one remote party for the
// life of its dialog: Outpost. After a transfer that party's descriptions
// come from another phone, whose o= line names another session. RFC 3264
// §8 wants the origin to stay the same within a dialog and its version to
// grow when the description changes, so every description sent to a leg
// goes through that leg's origin.

// origin keeps the o= line a leg has seen from Outpost.
type origin struct {
	mu      sync.Mutex
	fields  [][]byte // username, sess-id, sess-version, nettype, addrtype, address of the first description sent
	version uint64
	last    []byte // the last description sent, without its o= line
}

// present returns body as this leg must see it: the first description
// unchanged; later ones with the first one's origin and a version that
// grows by one whenever the description changed.
func (o *origin) present(body []byte) []byte {
	start, end, fields := findOrigin(body)
	if fields == nil {
		return body
	}
	rest := append(append([]byte{}, body[:start]...), body[end:]...)
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.fields == nil {
		v, err := strconv.ParseUint(string(fields[2]), 10, 64)
		if err != nil {
			return body
		}
		o.fields, o.version, o.last = fields, v, rest
		return body
	}
	if !bytes.Equal(rest, o.last) {
		o.version++
		o.last = rest
	}
	line := bytes.Join([][]byte{o.fields[0], o.fields[1], []byte(strconv.FormatUint(o.version, 10)),
		o.fields[3], o.fields[4], o.fields[5]}, []byte(" "))
	out := make([]byte, 0, len(body)+8)
	out = append(out, body[:start]...)
	out = append(out, "o="...)
	out = append(out, line...)
	return append(out, body[end:]...)
}

// findOrigin locates the o= line of an SDP body: the byte range of the line
// without its line ending, and its six fields (nil when there is no valid
// one).
func findOrigin(body []byte) (start, end int, fields [][]byte) {
	for start < len(body) {
		end = bytes.IndexByte(body[start:], '\n')
		if end < 0 {
			end = len(body)
		} else {
			end += start
		}
		line := bytes.TrimRight(body[start:end], "\r")
		if bytes.HasPrefix(line, []byte("o=")) {
			f := bytes.Fields(line[2:])
			if len(f) != 6 {
				return 0, 0, nil
			}
			return start, start + len(line), f
		}
		start = end + 1
	}
	return 0, 0, nil
}

// sendRecv returns body with every direction attribute (a=sendonly,
// a=recvonly, a=inactive) made a=sendrecv: the description of a party on
// hold, offered to someone new after a transfer, must not start the new
// call on hold.
func sendRecv(body []byte) []byte {
	if len(body) == 0 {
		return body
	}
	out := body
	for _, dir := range []string{"a=sendonly", "a=recvonly", "a=inactive"} {
		out = replaceLines(out, []byte(dir), []byte("a=sendrecv"))
	}
	return out
}

// replaceLines replaces every whole line equal to old with repl.
func replaceLines(body, old, repl []byte) []byte {
	var out []byte
	for start := 0; start < len(body); {
		end := bytes.IndexByte(body[start:], '\n')
		if end < 0 {
			end = len(body)
		} else {
			end += start
		}
		line := body[start:end]
		if bytes.Equal(bytes.TrimRight(line, "\r"), old) {
			if out == nil {
				out = append(make([]byte, 0, len(body)), body[:start]...)
			}
			out = append(out, repl...)
			if bytes.HasSuffix(line, []byte("\r")) {
				out = append(out, '\r')
			}
		} else if out != nil {
			out = append(out, line...)
		}
		if end < len(body) && out != nil {
			out = append(out, '\n')
		}
		start = end + 1
	}
	if out == nil {
		return body
	}
	return out
}
