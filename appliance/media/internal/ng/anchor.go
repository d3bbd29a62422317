package ng

import (
	"context"
	"fmt"
	"net/netip"
)

// Anchor sets up load-test calls on an NG server: an offer with A's SDP,
// an answer with B's, a delete at the end. It fits rtpload.Anchor.
type Anchor struct {
	c      *Client
	prefix string
}

// NewAnchor uses c; prefix makes the run's call-ids unique.
func NewAnchor(c *Client, prefix string) *Anchor { return &Anchor{c: c, prefix: prefix} }

func (a *Anchor) ids(i int) (callID, fromTag, toTag string) {
	return fmt.Sprintf("%s-%d", a.prefix, i), fmt.Sprintf("a%d", i), fmt.Sprintf("b%d", i)
}

// Open offers A's address and answers with B's; the offer's reply tells
// where B sends, the answer's where A sends.
func (a *Anchor) Open(ctx context.Context, i int, aAddr, bAddr netip.AddrPort) (aTo, bTo netip.AddrPort, err error) {
	callID, from, to := a.ids(i)
	offer, err := a.c.Do(ctx, Dict{"command": "offer", "call-id": callID, "from-tag": from, "sdp": AudioSDP(aAddr)})
	if err != nil {
		return aTo, bTo, err
	}
	if bTo, err = AudioAddr(Str(offer, "sdp")); err != nil {
		return aTo, bTo, fmt.Errorf("offer reply: %w", err)
	}
	answer, err := a.c.Do(ctx, Dict{"command": "answer", "call-id": callID, "from-tag": from, "to-tag": to, "sdp": AudioSDP(bAddr)})
	if err != nil {
		return aTo, bTo, err
	}
	if aTo, err = AudioAddr(Str(answer, "sdp")); err != nil {
		return aTo, bTo, fmt.Errorf("answer reply: %w", err)
	}
	return aTo, bTo, nil
}

// Close deletes call i.
func (a *Anchor) Close(ctx context.Context, i int) error {
	callID, from, _ := a.ids(i)
	_, err := a.c.Do(ctx, Dict{"command": "delete", "call-id": callID, "from-tag": from})
	return err
}
