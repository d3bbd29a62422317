package dtmf

import (
	"time"

	"github.com/pion/rtp"
)

// Defaults for the zero values of ReceiverConfig.
const (
	DefaultClockRate = 8000
	// DefaultTimeout ends an event whose end packets were all lost: RFC
	// 4733 senders update every 50 ms or so, so a second of silence means
	// the key was released long ago.
	DefaultTimeout = time.Second
)

// maxBackwards is how far (in timestamp units) an event may start before
// the newest one and still be taken as a late packet of an old event
// rather than a stream that restarted its timestamps: 10 s at 8 kHz.
const maxBackwards = 80_000

// ReceiverConfig configures a Receiver.
type ReceiverConfig struct {
	// PayloadType is the telephone-event payload type negotiated in SDP
	// (often 101). Packets of other types only advance the clock.
	PayloadType uint8
	// ClockRate is the telephone-event clock in Hz. Zero means 8000.
	ClockRate int
	// Timeout ends an event that has had no packet for this long. Zero
	// means DefaultTimeout.
	Timeout time.Duration
}

// Digit is a key press.
type Digit struct {
	Key byte // '0'-'9', '*', '#', 'A'-'D'
	// Duration is how long the key was held, as far as the packets tell.
	Duration time.Duration
	// Volume is the last power level reported, in -dBm0.
	Volume uint8
	// Timestamp is the RTP timestamp of the event's start.
	Timestamp uint32
	// Ended is true when an end packet was received; false when the
	// event was ended by a newer event, a new stream or the timeout.
	Ended bool
}

// Receiver decodes the telephone-events of one RTP stream into key
// presses. It reports each key press once, when it ends: on its first end
// packet (the retransmitted end packets and late duplicates are ignored),
// or, when every end packet was lost, when a newer event starts, the
// stream's SSRC changes, or no packet of the event came for Timeout.
// Events that are not DTMF keys (flash, tones) are tracked but not
// reported. A Receiver is not safe for concurrent use.
type Receiver struct {
	cfg ReceiverConfig

	ssrc     uint32
	haveSSRC bool
	newest   uint32 // timestamp of the newest event seen
	seen     bool   // newest is set

	cur  event
	done [8]doneEvent // recently finished events, a ring
	next int
	// atNewest holds the codes of the events finished at timestamp newest,
	// however many: the ring forgets, and a stream that sends many codes
	// at one timestamp (which no sender should) would have an evicted one
	// reported again.
	atNewest [4]uint64
}

// event is the event in progress. A long event spans segments (RFC 4733
// 2.5.1.3), each with its own timestamp and a duration up to 0xFFFF.
type event struct {
	active   bool
	code     uint8
	ts       uint32 // the first segment's timestamp
	segTS    uint32 // the current segment's timestamp
	segDur   uint16 // the longest duration seen in the current segment
	before   uint32 // the durations of the finished segments
	volume   uint8
	lastSeen time.Time
}

type doneEvent struct {
	ts   uint32
	code uint8
	set  bool
}

// NewReceiver returns a Receiver for one stream.
func NewReceiver(cfg ReceiverConfig) *Receiver {
	if cfg.ClockRate <= 0 {
		cfg.ClockRate = DefaultClockRate
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = DefaultTimeout
	}
	return &Receiver{cfg: cfg}
}

// Feed takes a received RTP packet, of any payload type, that arrived at
// now, and appends the key presses it ended to digits.
func (r *Receiver) Feed(digits []Digit, p *rtp.Packet, now time.Time) []Digit {
	if r.haveSSRC && p.SSRC != r.ssrc {
		digits = r.finish(digits, false)
		r.reset()
	}
	r.ssrc, r.haveSSRC = p.SSRC, true
	digits = r.Expire(digits, now)
	if p.PayloadType != r.cfg.PayloadType {
		return digits
	}
	ev, err := ParseEvent(p.Payload)
	if err != nil {
		return digits
	}
	return r.event(digits, ev, p.Timestamp, now)
}

// Expire appends the event in progress to digits if it has had no packet
// for the timeout. Feed calls it; call it also when packets stop coming.
func (r *Receiver) Expire(digits []Digit, now time.Time) []Digit {
	if r.cur.active && now.Sub(r.cur.lastSeen) >= r.cfg.Timeout {
		digits = r.finish(digits, false)
	}
	return digits
}

// Pressed reports the key of the event in progress, if any: a key that is
// down now and will be reported when it ends.
func (r *Receiver) Pressed() (byte, bool) {
	if !r.cur.active {
		return 0, false
	}
	return Key(r.cur.code)
}

func (r *Receiver) event(digits []Digit, ev Event, ts uint32, now time.Time) []Digit {
	if r.finished(ts, ev.Code) {
		return digits // a retransmitted end packet or a late duplicate
	}
	cur := &r.cur
	if cur.active && ts == cur.segTS && ev.Code == cur.code {
		cur.segDur = max(cur.segDur, ev.Duration)
		cur.volume, cur.lastSeen = ev.Volume, now
		if ev.End {
			digits = r.finish(digits, true)
		}
		return digits
	}
	if r.seen {
		if back := r.newest - ts; back != 0 && back < maxBackwards && ts != cur.segTS {
			return digits // a late packet of an event already superseded
		}
	}
	if cur.active && ev.Code == cur.code && cur.segDur == 0xFFFF && ts == cur.segTS+0xFFFF {
		// The next segment of a long event.
		cur.before += uint32(cur.segDur)
		cur.segTS, cur.segDur = ts, ev.Duration
		cur.volume, cur.lastSeen = ev.Volume, now
		r.setNewest(ts)
		if ev.End {
			digits = r.finish(digits, true)
		}
		return digits
	}
	digits = r.finish(digits, false) // a new event ends the one in progress
	*cur = event{active: true, code: ev.Code, ts: ts, segTS: ts, segDur: ev.Duration, volume: ev.Volume, lastSeen: now}
	r.setNewest(ts)
	if ev.End {
		digits = r.finish(digits, true)
	}
	return digits
}

// finish ends the event in progress, if any, appending it to digits when
// it is a DTMF key.
func (r *Receiver) finish(digits []Digit, ended bool) []Digit {
	cur := &r.cur
	if !cur.active {
		return digits
	}
	cur.active = false
	if cur.segTS == r.newest {
		r.atNewest[cur.code/64] |= 1 << (cur.code % 64)
	}
	r.done[r.next] = doneEvent{ts: cur.segTS, code: cur.code, set: true}
	r.next = (r.next + 1) % len(r.done)
	if cur.segTS != cur.ts {
		r.done[r.next] = doneEvent{ts: cur.ts, code: cur.code, set: true}
		r.next = (r.next + 1) % len(r.done)
	}
	key, ok := Key(cur.code)
	if !ok {
		return digits
	}
	units := cur.before + uint32(cur.segDur)
	return append(digits, Digit{
		Key:       key,
		Duration:  time.Duration(units) * time.Second / time.Duration(r.cfg.ClockRate),
		Volume:    cur.volume,
		Timestamp: cur.ts,
		Ended:     ended,
	})
}

// setNewest notes ts as the newest event's timestamp.
func (r *Receiver) setNewest(ts uint32) {
	if !r.seen || ts != r.newest {
		r.atNewest = [4]uint64{}
	}
	r.newest, r.seen = ts, true
}

func (r *Receiver) finished(ts uint32, code uint8) bool {
	if r.seen && ts == r.newest && r.atNewest[code/64]&(1<<(code%64)) != 0 {
		return true
	}
	for _, d := range r.done {
		if d.set && d.ts == ts && d.code == code {
			return true
		}
	}
	return false
}

func (r *Receiver) reset() {
	cfg := r.cfg
	*r = Receiver{cfg: cfg}
}
