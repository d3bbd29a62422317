package main

import (
	"context"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/outpost-voice/outpost/appliance/media"
	"github.com/outpost-voice/outpost/appliance/media/internal/ng"
	"github.com/outpost-voice/outpost/appliance/media/internal/rtpload"
)

// TestLoadOverNG drives the Outpost relay through the NG harness the way
// scripts/bench-media.sh drives it and rtpengine.
func TestLoadOverNG(t *testing.T) {
	ip := netip.MustParseAddr("127.0.0.1")
	rec := rtpload.NewResidence()
	r, err := media.New(media.Config{IP: ip, PortMin: 32100, PortMax: 32199, Residence: rec.Record})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	h := &ngHandler{relay: r, calls: map[string]*media.Session{}, residence: rec}
	done := make(chan error, 1)
	go func() { done <- h.serve(ctx, pc) }()

	c, err := ng.Dial(pc.LocalAddr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Do(ctx, ng.Dict{"command": "ping"}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Do(ctx, ng.Dict{"command": "answer", "call-id": "nope", "sdp": ng.AudioSDP(netip.MustParseAddrPort("127.0.0.1:9"))}); err == nil {
		t.Error("answer for an unknown call accepted")
	}
	res, err := rtpload.Run(ctx, ngAnchor{Anchor: ng.NewAnchor(c, "t"), c: c}, rtpload.Config{
		Calls: 3, Duration: 200 * time.Millisecond, Drain: 5 * time.Second,
	})
	if err != nil {
		t.Fatal(err)
	}
	if res.Sent[0] != 30 || res.Received != res.Sent || res.Misrouted != 0 {
		t.Errorf("sent %v received %v misrouted %d", res.Sent, res.Received, res.Misrouted)
	}
	// The window opens as sending starts (no warm-up): give or take the
	// first packets.
	if res.RelayErr != "" || res.Relay.N < 50 || res.Relay.N > 60 {
		t.Errorf("in-relay figures over NG: %+v (%s), want about 60 packets", res.Relay, res.RelayErr)
	}
	if st := r.Stats(); st.Sessions != 0 || st.AtoB.RTPPackets != 30 || st.BtoA.RTPPackets != 30 {
		t.Errorf("relay stats after delete: %+v", st)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}
