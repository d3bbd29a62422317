package registrar

import (
	"bytes"

	"github.com/emiago/sipgo/sip"
)

// scannerAgents are User-Agent fragments of SIP scanners and brute-force
// tools (lower case). Their messages are dropped unanswered: an answer only
// tells them someone is here.
var scannerAgents = [][]byte{
	[]byte("friendly-scanner"), []byte("sipvicious"), []byte("sipcli"), []byte("sip-scan"),
	[]byte("vaxsipuseragent"), []byte("pplsip"), []byte("iwar"), []byte("sivus"), []byte("sundayddr"),
}

var userAgentName = []byte("user-agent:")

// DropScanners is a transport read filter that drops messages whose
// User-Agent names a known scanner, before they are parsed. (sipgo stops a
// listener whose filter returns an error, so a drop is an empty result.)
func DropScanners(_ sip.TransportReadProps, data []byte) ([]byte, error) {
	rest := data
	for len(rest) > 0 {
		line := rest
		if i := bytes.IndexByte(rest, '\n'); i >= 0 {
			line, rest = rest[:i], rest[i+1:]
		} else {
			rest = nil
		}
		line = bytes.TrimRight(line, "\r")
		if len(line) == 0 {
			return data, nil // end of headers
		}
		colon := bytes.IndexByte(line, ':')
		if colon < 0 || !bytes.EqualFold(bytes.TrimRight(line[:colon], " \t"), userAgentName[:len(userAgentName)-1]) {
			continue
		}
		ua := bytes.ToLower(line[colon+1:])
		for _, s := range scannerAgents {
			if bytes.Contains(ua, s) {
				return nil, nil
			}
		}
		return data, nil
	}
	return data, nil
}
