package ivr

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/pion/rtp"

	"github.com/outpost-voice/outpost/appliance/media/g711"
)

// sendAudio sends n packets of 160 PCMU samples of value v to ep.
func (c *caller) sendAudio(t *testing.T, ep *Endpoint, n int, v int16) {
	t.Helper()
	pcm := make([]int16, 160)
	for i := range pcm {
		pcm[i] = v
	}
	payload := make([]byte, 160)
	g711.PCMU.Encode(payload, pcm)
	for i := range n {
		pkt := rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: 0, SequenceNumber: uint16(i), Timestamp: uint32(i * 160),
			SSRC: 0xBEEF}, Payload: payload}
		b, _ := pkt.Marshal()
		if _, err := c.conn.WriteToUDPAddrPort(b, ep.Addr()); err != nil {
			t.Fatal(err)
		}
	}
}

// Record hands over the caller's audio decoded, and ends with the sink, a
// key, or the idle timeout.
func TestRecord(t *testing.T) {
	c := newCaller(t)
	ep, err := newEndpoints(t).Open("call-r", c.addr(), g711.PCMU, 101)
	if err != nil {
		t.Fatal(err)
	}
	defer ep.Close()
	ep.Key('1') // pressed before Record: not a key of the recording
	// The sink stops it after 5 packets.
	got := make(chan int, 1)
	go func() {
		n := 0
		k, err := ep.Record(context.Background(), 5*time.Second, func(f []int16) bool {
			if len(f) != 160 || f[0] < 900 || f[0] > 1100 {
				t.Errorf("frame of %d samples, first %d; want 160 near 1000", len(f), f[0])
			}
			n++
			return n < 5
		})
		if k != 0 || err != nil {
			t.Errorf("Record = %q, %v", k, err)
		}
		got <- n
	}()
	deadline := time.Now().Add(5 * time.Second)
	for done := false; !done; {
		if time.Now().After(deadline) {
			t.Fatal("the recording did not stop at the sink's word")
		}
		c.sendAudio(t, ep, 1, 1000)
		select {
		case n := <-got:
			if n != 5 {
				t.Fatalf("sink saw %d frames", n)
			}
			done = true
		case <-time.After(20 * time.Millisecond):
		}
	}
	// A key ends it.
	keys := make(chan byte, 1)
	go func() {
		k, err := ep.Record(context.Background(), 5*time.Second, func([]int16) bool { return true })
		if err != nil {
			t.Errorf("Record: %v", err)
		}
		keys <- k
	}()
	for k := byte(0); k == 0; {
		c.press(t, ep, '#', 101)
		select {
		case k = <-keys:
			if k != '#' {
				t.Fatalf("Record ended with %q, want #", k)
			}
		case <-time.After(200 * time.Millisecond):
		}
	}
	// Nothing sent: idle.
	if _, err := ep.Record(context.Background(), 100*time.Millisecond, func([]int16) bool { return true }); !errors.Is(err, ErrNoInput) {
		t.Fatalf("Record with no audio = %v, want ErrNoInput", err)
	}
}
