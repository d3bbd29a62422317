package dtmf

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// EventSize is the size of a telephone-event payload.
const EventSize = 4

// ErrPayload is wrapped by the errors of malformed payloads and bodies.
var ErrPayload = errors.New("malformed DTMF")

// Event is one RFC 4733 telephone-event payload.
type Event struct {
	// Code is the event: 0-9 the digits, 10 '*', 11 '#', 12-15 'A'-'D',
	// 16 flash; other codes are not DTMF.
	Code uint8
	// End marks the final packet(s) of the event.
	End bool
	// Volume is the power level in -dBm0, 0 to 63.
	Volume uint8
	// Duration is how long the event has lasted so far, in RTP timestamp
	// units (1/8000 s for telephone-event/8000).
	Duration uint16
}

// ParseEvent decodes a telephone-event payload. Bytes after the first
// four are ignored.
func ParseEvent(p []byte) (Event, error) {
	if len(p) < EventSize {
		return Event{}, fmt.Errorf("parse telephone-event: %d bytes, want %d: %w", len(p), EventSize, ErrPayload)
	}
	return Event{
		Code:     p[0],
		End:      p[1]&0x80 != 0,
		Volume:   p[1] & 0x3F,
		Duration: binary.BigEndian.Uint16(p[2:4]),
	}, nil
}

// AppendTo appends the payload of e to b. The volume is capped at 63.
func (e Event) AppendTo(b []byte) []byte {
	flags := min(e.Volume, 63)
	if e.End {
		flags |= 0x80
	}
	return append(b, e.Code, flags, byte(e.Duration>>8), byte(e.Duration))
}

// keys are the DTMF keys by event code.
const keys = "0123456789*#ABCD"

// Key returns the key of a DTMF event code ('0'-'9', '*', '#', 'A'-'D').
func Key(code uint8) (byte, bool) {
	if int(code) >= len(keys) {
		return 0, false
	}
	return keys[code], true
}

// Code returns the event code of a key; 'a'-'d' are taken as 'A'-'D'.
func Code(key byte) (uint8, bool) {
	if key >= 'a' && key <= 'd' {
		key -= 'a' - 'A'
	}
	for i := range len(keys) {
		if keys[i] == key {
			return uint8(i), true
		}
	}
	return 0, false
}
