package ng

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"
)

// AudioSDP is the smallest PCMU offer or answer for an endpoint at addr.
func AudioSDP(addr netip.AddrPort) string {
	ip := addr.Addr()
	fam := "IP4"
	if ip.Is6() {
		fam = "IP6"
	}
	return fmt.Sprintf("v=0\r\no=- 1 1 IN %[1]s %[2]s\r\ns=-\r\nc=IN %[1]s %[2]s\r\nt=0 0\r\n"+
		"m=audio %[3]d RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\na=sendrecv\r\n", fam, ip, addr.Port())
}

// AudioAddr finds the RTP address of the first audio stream of an SDP: the
// c= line (media level over session level) and the m=audio port.
func AudioAddr(sdp string) (netip.AddrPort, error) {
	var session, media string
	port := -1
	seenMedia, inAudio := false, false
	for _, line := range strings.Split(sdp, "\n") {
		line = strings.TrimRight(line, "\r")
		switch {
		case strings.HasPrefix(line, "m="):
			seenMedia = true
			f := strings.Fields(line[2:])
			inAudio = port < 0 && len(f) >= 2 && f[0] == "audio"
			if inAudio {
				p, err := strconv.Atoi(f[1])
				if err != nil {
					return netip.AddrPort{}, fmt.Errorf("SDP m=audio port %q: %w", f[1], err)
				}
				port = p
			}
		case strings.HasPrefix(line, "c="):
			f := strings.Fields(line[2:])
			if len(f) != 3 {
				return netip.AddrPort{}, fmt.Errorf("SDP c= line %q", line)
			}
			if !seenMedia {
				session = f[2]
			} else if inAudio {
				media = f[2]
			}
		}
	}
	if port < 0 {
		return netip.AddrPort{}, fmt.Errorf("SDP has no m=audio line")
	}
	host := media
	if host == "" {
		host = session
	}
	ip, err := netip.ParseAddr(host)
	if err != nil {
		return netip.AddrPort{}, fmt.Errorf("SDP connection address %q: %w", host, err)
	}
	return netip.AddrPortFrom(ip, uint16(port)), nil
}
