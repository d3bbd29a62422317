package node

import (
	"testing"

	"github.com/outpost-voice/outpost/config"
)

// TestDNSDomainIsLocal: phones pointed at the nodes' SRV records register
// with the zone (or a site's name in it) as their domain; the registrar
// takes them as its own.
func TestDNSDomainIsLocal(t *testing.T) {
	n := &Node{cfg: config.Config{DNS: config.DNS{Domain: "survive.acme.example."}}}
	for _, h := range []string{"survive.acme.example", "SURVIVE.acme.example.", "hq.survive.acme.example", "127.0.0.1"} {
		if !n.isLocalHost(h) {
			t.Errorf("%s is not local", h)
		}
	}
}
