package rtpload

import (
	"context"
	"fmt"
	"net/netip"
	"sync"

	"github.com/outpost-voice/outpost/appliance/media"
)

// RelayAnchor anchors calls on an in-process media.Relay, the way the
// B2BUA does: A's side is told A's address, B's side B's.
type RelayAnchor struct {
	Relay *media.Relay
	// Recorder, if not nil, is what the relay's Config.Residence records
	// into; it makes the anchor a ResidenceMeter.
	Recorder *Residence

	mu       sync.Mutex
	sessions map[int]*media.Session
}

// Open allocates a session for call i.
func (r *RelayAnchor) Open(_ context.Context, i int, a, b netip.AddrPort) (aTo, bTo netip.AddrPort, err error) {
	s, err := r.Relay.Allocate(fmt.Sprintf("load-%d", i), nil)
	if err != nil {
		return aTo, bTo, err
	}
	s.A().SetRemote(a, netip.AddrPort{})
	s.B().SetRemote(b, netip.AddrPort{})
	r.mu.Lock()
	if r.sessions == nil {
		r.sessions = make(map[int]*media.Session)
	}
	r.sessions[i] = s
	r.mu.Unlock()
	return s.A().LocalRTP(), s.B().LocalRTP(), nil
}

// Close closes call i's session.
func (r *RelayAnchor) Close(_ context.Context, i int) error {
	r.mu.Lock()
	s := r.sessions[i]
	delete(r.sessions, i)
	r.mu.Unlock()
	if s == nil {
		return nil
	}
	return s.Close()
}

// ResetResidence starts a new residence window.
func (r *RelayAnchor) ResetResidence(context.Context) error {
	if r.Recorder == nil {
		return errNoResidence
	}
	r.Recorder.Reset()
	return nil
}

// Residence describes the window.
func (r *RelayAnchor) Residence(context.Context) (Dist, error) {
	if r.Recorder == nil {
		return Dist{}, errNoResidence
	}
	return r.Recorder.Dist(), nil
}

// DirectAnchor puts no relay in the path: A sends straight to B and B to
// A. The figures it gives are the generator's and the machine's own, the
// floor under any relay's.
type DirectAnchor struct{}

// Open returns B's address for A and A's for B.
func (DirectAnchor) Open(_ context.Context, _ int, a, b netip.AddrPort) (aTo, bTo netip.AddrPort, err error) {
	return b, a, nil
}

// Close does nothing.
func (DirectAnchor) Close(context.Context, int) error { return nil }
