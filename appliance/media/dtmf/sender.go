package dtmf

import (
	"fmt"
	"time"
)

// Defaults for the zero values of Sender.
const (
	DefaultToneDuration = 100 * time.Millisecond
	DefaultInterval     = 50 * time.Millisecond
	DefaultVolume       = 10 // -dBm0
	// EndPackets is how many times the final packet is sent (RFC 4733
	// 2.5.1.4: three in all).
	EndPackets = 3
)

// Sender lays out the RFC 4733 packets of key presses.
type Sender struct {
	// Duration is how long each key is held. Zero means 100 ms; it is
	// rounded up to a whole number of Intervals. The duration field
	// saturates at 0xFFFF units (8 s at 8 kHz): keys are not held longer.
	Duration time.Duration
	// Interval is the time between the updates of an event. Zero means
	// 50 ms; a stream paced in 20 ms packets uses 20 ms.
	Interval time.Duration
	// Volume is the power level in -dBm0. Zero means 10.
	Volume uint8
	// ClockRate is the telephone-event clock in Hz. Zero means 8000.
	ClockRate int
}

// Packet is one packet of a key press. All packets of a key press carry
// the RTP timestamp of its start (the sender's clock at offset 0), each
// its own sequence number.
type Packet struct {
	// Offset is when to send the packet, from the start of the event.
	Offset time.Duration
	// Marker is set on the first packet of the event.
	Marker bool
	Event  Event
}

// Packets returns the packets that signal key: an update every Interval
// from the start with the duration so far (the first one 0, with the
// marker bit), then the final packet, with the end bit and the whole
// duration, three times an Interval apart.
func (s Sender) Packets(key byte) ([]Packet, error) {
	code, ok := Code(key)
	if !ok {
		return nil, fmt.Errorf("send DTMF: %q is not a key (0-9, *, #, A-D): %w", key, ErrPayload)
	}
	iv := s.Interval
	if iv <= 0 {
		iv = DefaultInterval
	}
	d := s.Duration
	if d <= 0 {
		d = DefaultToneDuration
	}
	updates := int((d + iv - 1) / iv)
	d = time.Duration(updates) * iv
	vol := s.Volume
	if vol == 0 {
		vol = DefaultVolume
	}
	rate := s.ClockRate
	if rate <= 0 {
		rate = DefaultClockRate
	}
	units := func(t time.Duration) uint16 {
		return uint16(min(int64(t)*int64(rate)/int64(time.Second), 0xFFFF))
	}
	out := make([]Packet, 0, updates+EndPackets)
	for i := range updates {
		at := time.Duration(i) * iv
		out = append(out, Packet{Offset: at, Marker: i == 0, Event: Event{Code: code, Volume: vol, Duration: units(at)}})
	}
	for i := range EndPackets {
		out = append(out, Packet{Offset: d + time.Duration(i)*iv, Event: Event{Code: code, End: true, Volume: vol, Duration: units(d)}})
	}
	return out, nil
}
