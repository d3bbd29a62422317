package calls

import (
	"bytes"
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"

	relay "github.com/outpost-voice/outpost/appliance/media"
)

// Anchor puts a node in the media path of a call (trunk calls: topology
// hiding, RFC 5853). The node's media relay implements it.
type Anchor interface {
	// Allocate reserves a relay session with two sides for a call (its
	// Call-ID, for the logs); onTimeout runs
	// (once) when media stops in both directions for the relay's timeout.
	Allocate(callID string, onTimeout func()) (MediaSession, error)
}

// MediaSession is one relayed call.
type MediaSession interface {
	// Local is the address (RTP; RTCP on port+1) side i (0 or 1) must
	// send to, which Outpost puts in the description sent to that side.
	Local(side int) netip.AddrPort
	// SetRemote is where side i said it receives (from its description);
	// the relay latches to where its packets really come from.
	SetRemote(side int, addr netip.AddrPort)
	// SetSRTP makes side i speak SRTP (SDES): the relay encrypts what it
	// sends there with local (the key in the description that side was
	// sent) and decrypts what it receives with remote (the side's own).
	// Zero keys (no Suite) make the side plain RTP again.
	SetSRTP(side int, local, remote relay.Crypto) error
	Close()
}

// media is a party's side of an anchored session.
type media struct {
	sess   MediaSession
	side   int
	codecs []string // formats allowed toward this party (a trunk's list); nil: any
	srtp   *sdes    // an SBC speaking SRTP (SDES); nil: plain RTP
	// plain: the other side speaks SRTP the relay terminates, so this
	// party is told plain RTP, without the other side's keys.
	plain atomic.Bool
}

// handOver is this side of the session for a party taking it over (a
// transfer target): the same session and side, the same treatment (plain
// RTP when the relay terminates the far side's SRTP).
func (m *media) handOver() *media {
	n := &media{sess: m.sess, side: m.side, codecs: m.codecs, srtp: m.srtp}
	n.plain.Store(m.plain.Load())
	return n
}

// staticPayloads names the static RTP payload types (RFC 3551) a trunk's
// codec list may name.
var staticPayloads = map[string]string{"0": "PCMU", "8": "PCMA", "9": "G722", "18": "G729"}

// sdpRemote reads where a description says its audio is received: the
// connection address (media level over session level) and the first
// audio stream's port. ok is false when there is none (port 0: rejected).
func sdpRemote(body []byte) (addr netip.AddrPort, ok bool) {
	var session, media netip.Addr
	port, inAudio := 0, false
	for _, line := range sdpLines(body) {
		switch {
		case strings.HasPrefix(line, "m="):
			if inAudio {
				return finishRemote(session, media, port)
			}
			f := strings.Fields(line[2:])
			if len(f) >= 2 && f[0] == "audio" && port == 0 {
				inAudio = true
				port, _ = strconv.Atoi(f[1])
			}
		case strings.HasPrefix(line, "c="):
			f := strings.Fields(line[2:])
			if len(f) != 3 {
				continue
			}
			a, err := netip.ParseAddr(strings.SplitN(f[2], "/", 2)[0])
			if err != nil {
				continue
			}
			if inAudio {
				media = a
			} else if port == 0 {
				session = a
			}
		}
	}
	return finishRemote(session, media, port)
}

func finishRemote(session, media netip.Addr, port int) (netip.AddrPort, bool) {
	a := media
	if !a.IsValid() {
		a = session
	}
	if !a.IsValid() || port <= 0 || port > 65535 {
		return netip.AddrPort{}, false
	}
	return netip.AddrPortFrom(a, uint16(port)), true
}

// anchoredSDP rewrites a description for a party whose media goes through
// the relay at local: every address in it (o=, c=, a=rtcp) is the relay's,
// the audio port is local's, other streams are refused (port 0), ICE
// attributes are dropped, and with codecs the audio formats are only those
// named there (by rtpmap, or static payload type). Nothing of the other
// party's network remains. An offer whose audio keeps no format is an
// error (the trunk cannot take the call).
func anchoredSDP(body []byte, local netip.AddrPort, codecs []string) ([]byte, error) {
	lines := sdpLines(body)
	ip := "IP4"
	if local.Addr().Is6() {
		ip = "IP6"
	}
	addr := local.Addr().String()
	keep, dtmf := allowedFormats(lines, codecs)
	var out bytes.Buffer
	inAudio, audioDone := false, false
	for _, line := range lines {
		switch {
		case strings.HasPrefix(line, "o="):
			f := strings.Fields(line[2:])
			if len(f) == 6 {
				f[4], f[5] = ip, addr
				line = "o=" + strings.Join(f, " ")
			}
		case strings.HasPrefix(line, "c="):
			line = "c=IN " + ip + " " + addr
		case strings.HasPrefix(line, "m="):
			f := strings.Fields(line[2:])
			inAudio = len(f) >= 4 && f[0] == "audio" && !audioDone
			if len(f) < 4 {
				continue
			}
			if !inAudio {
				f[1] = "0" // one audio stream through the relay; the rest refused
				line = "m=" + strings.Join(f, " ")
				break
			}
			audioDone = true
			formats := f[3:]
			if keep != nil {
				formats = slices.DeleteFunc(slices.Clone(formats), func(pt string) bool { return !keep[pt] })
				if !slices.ContainsFunc(formats, func(pt string) bool { return !dtmf[pt] }) {
					return nil, fmt.Errorf("no audio format of the offer is allowed here (allowed: %s)", strings.Join(codecs, ", "))
				}
			}
			line = "m=" + strings.Join(append([]string{f[0], strconv.Itoa(int(local.Port())), f[2]}, formats...), " ")
		case strings.HasPrefix(line, "a=rtcp:"):
			line = "a=rtcp:" + strconv.Itoa(int(local.Port())+1)
		case strings.HasPrefix(line, "a=candidate:"), strings.HasPrefix(line, "a=ice-"),
			strings.HasPrefix(line, "a=end-of-candidates"), strings.HasPrefix(line, "a=remote-candidates"):
			continue
		case inAudio && keep != nil && isFormatLine(line):
			if pt := formatOf(line); pt != "" && !keep[pt] {
				continue
			}
		}
		out.WriteString(line)
		out.WriteString("\r\n")
	}
	return out.Bytes(), nil
}

// allowedFormats is the set of payload types of the audio stream whose
// codec is in codecs, and telephone-event whatever the list says (RFC 4733
// DTMF is passed through, not a codec a trunk chooses); nil when codecs is
// nil: everything.
func allowedFormats(lines []string, codecs []string) (keep, dtmf map[string]bool) {
	if codecs == nil {
		return nil, nil
	}
	named := map[string]string{} // payload type -> codec name
	for pt, name := range staticPayloads {
		named[pt] = name
	}
	for _, line := range lines {
		if strings.HasPrefix(line, "a=rtpmap:") {
			f := strings.Fields(line[len("a=rtpmap:"):])
			if len(f) == 2 {
				named[f[0]] = strings.SplitN(f[1], "/", 2)[0]
			}
		}
	}
	keep, dtmf = map[string]bool{}, map[string]bool{}
	for pt, name := range named {
		if strings.EqualFold(name, "telephone-event") {
			keep[pt], dtmf[pt] = true, true
		}
		for _, c := range codecs {
			if strings.EqualFold(c, name) {
				keep[pt] = true
			}
		}
	}
	return keep, dtmf
}

// isFormatLine reports whether line describes one payload type.
func isFormatLine(line string) bool {
	return strings.HasPrefix(line, "a=rtpmap:") || strings.HasPrefix(line, "a=fmtp:") || strings.HasPrefix(line, "a=rtcp-fb:")
}

// formatOf is the payload type a format line describes.
func formatOf(line string) string {
	_, rest, _ := strings.Cut(line, ":")
	pt, _, _ := strings.Cut(rest, " ")
	return pt
}

// sdpLines splits a description into lines without their endings.
func sdpLines(body []byte) []string {
	var out []string
	for _, l := range strings.Split(string(body), "\n") {
		l = strings.TrimRight(l, "\r")
		if l != "" {
			out = append(out, l)
		}
	}
	return out
}
