package conference

import (
	"encoding/binary"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/rtp"

	"github.com/outpost-voice/outpost/appliance/media/dtmf"
	"github.com/outpost-voice/outpost/appliance/media/g711"
)

const (
	headerSize = 12
	// maxReads bounds the datagrams read from one socket in one frame: a
	// peer that floods loses the excess in its socket buffer, not the
	// other participants their frame.
	maxReads = 32
)

// Participant is one party's media in a conference: a UDP socket
// connected to its peer, a jitter buffer of what the peer sends and the
// stream of the mix it hears. Its methods are safe for concurrent use.
type Participant struct {
	c      *Conference
	id     string
	codec  g711.Codec
	dtmfPT uint8
	log    *slog.Logger
	sock   sock

	muted     atomic.Bool
	format    atomic.Int32 // a new codec<<8|dtmfPT (SetCodec) the mixing goroutine takes; -1: none
	keys      chan byte
	leaveOnce sync.Once
	keysOnce  sync.Once

	received, ignored, sent, sendErrs atomic.Uint64

	// Owned by the mixing goroutine.
	jb       jitter
	rx       *dtmf.Receiver
	pkt      rtp.Packet // a telephone-event packet, for rx
	digits   []dtmf.Digit
	in       frame // this frame's contribution to the mix
	has      bool  // in holds one (not silent, not muted)
	wasMuted bool
	first    int64 // the conference frame of the first packet sent; -1 before
	seq      uint16
	ts0      uint32
	ssrc     uint32
	out      [headerSize + frameSamples]byte
}

func newParticipant(c *Conference, id string, codec g711.Codec, dtmfPT uint8) *Participant {
	p := &Participant{c: c, id: id, codec: codec, dtmfPT: dtmfPT, keys: make(chan byte, 32), first: -1,
		seq: uint16(rand.Uint32()), ts0: rand.Uint32(), ssrc: rand.Uint32() | 1,
		rx: dtmf.NewReceiver(dtmf.ReceiverConfig{PayloadType: dtmfPT}), digits: make([]dtmf.Digit, 0, 4)}
	p.format.Store(-1)
	p.log = c.log.With("participant_id", id)
	p.out[0] = 0x80 // RTP version 2
	binary.BigEndian.PutUint32(p.out[8:], p.ssrc)
	return p
}

// ID is the id the participant joined with.
func (p *Participant) ID() string { return p.id }

// Addr is the participant's socket: where its peer sends its media.
func (p *Participant) Addr() netip.AddrPort { return p.sock.addr() }

// SetPeer sends the participant's mix to peer from now on, and takes only
// what peer sends (the B2BUA learned a new address from a re-INVITE).
func (p *Participant) SetPeer(peer netip.AddrPort) error {
	if err := p.sock.setPeer(peer); err != nil {
		return fmt.Errorf("conference %s participant %s: set peer: %w", p.c.id, p.id, err)
	}
	return nil
}

// SetCodec changes the codec the participant speaks and hears, and its
// telephone-event payload type (0: none), from the next frame: the B2BUA
// offers a leg before the answer says which G.711 law the peer chose.
func (p *Participant) SetCodec(codec g711.Codec, dtmfPT uint8) {
	if dtmfPT > 127 || (dtmfPT != 0 && dtmfPT == codec.PayloadType()) {
		dtmfPT = 0
	}
	p.format.Store(int32(codec)<<8 | int32(dtmfPT))
	p.c.poke()
}

// applyFormat takes a SetCodec (in the mixing goroutine).
func (p *Participant) applyFormat() {
	v := p.format.Swap(-1)
	if v < 0 {
		return
	}
	codec, pt := g711.Codec(v>>8), uint8(v&0xff)
	if codec != p.codec {
		p.jb = jitter{} // frames of the old law would decode wrongly
	}
	if pt != p.dtmfPT {
		p.rx = dtmf.NewReceiver(dtmf.ReceiverConfig{PayloadType: pt})
	}
	p.codec, p.dtmfPT = codec, pt
}

// SetMute takes the participant's audio out of the mix (true) or puts it
// back. A muted participant still hears everyone, and its keys are still
// heard. The change is faded over a frame.
func (p *Participant) SetMute(muted bool) { p.muted.Store(muted) }

// Muted reports whether the participant is muted.
func (p *Participant) Muted() bool { return p.muted.Load() }

// Keys delivers the RFC 4733 keys the participant pressed, each once, when
// it is released. Keys not read are dropped beyond 32. The channel is
// closed once the participant has left (within a frame of Leave) or the
// conference has closed.
func (p *Participant) Keys() <-chan byte { return p.keys }

// Leave takes the participant out of the conference and closes its
// socket; the others hear the leave tone. Calling it again does nothing.
func (p *Participant) Leave() { p.c.leave(p) }

// Stats are a participant's counters since it joined.
type Stats struct {
	Received uint64 // audio frames received, late and duplicate ones included
	// Ignored counts datagrams that are not RTP, or of a payload type that
	// is neither the codec nor the telephone-event one, or audio that is
	// not a 20 ms frame.
	Ignored uint64
	Lost    uint64 // frames that never came while later ones did
	Late    uint64 // frames that came after their turn, and duplicates
	// Dropped counts frames thrown away to keep the jitter buffer at most
	// three frames deep, or when the stream restarted.
	Dropped   uint64
	Concealed uint64 // frames played as a faded repetition or silence
	Sent      uint64 // packets of the mix sent
	// SendErrors counts packets the socket refused (a full buffer, an
	// ICMP error from the peer).
	SendErrors uint64
}

// Stats returns the participant's counters.
func (p *Participant) Stats() Stats {
	return Stats{Received: p.received.Load(), Ignored: p.ignored.Load(), Lost: p.jb.lost.Load(),
		Late: p.jb.late.Load(), Dropped: p.jb.dropped.Load(), Concealed: p.jb.concealed.Load(),
		Sent: p.sent.Load(), SendErrors: p.sendErrs.Load()}
}

// closeKeys closes Keys; only once the mixing goroutine will not send to
// it again.
func (p *Participant) closeKeys() { p.keysOnce.Do(func() { close(p.keys) }) }

// receive drains the socket: audio into the jitter buffer, telephone-events
// into keys. buf is the mixing goroutine's read buffer.
func (p *Participant) receive(buf []byte, now time.Time) {
	for range maxReads {
		n, more := p.sock.recv(buf)
		if !more {
			break
		}
		if n < 0 || n > len(buf) {
			p.ignored.Add(1)
			continue
		}
		p.handle(buf[:n], now)
	}
	p.digits = p.rx.Expire(p.digits[:0], now) // a key whose end packets were all lost
	p.deliver()
}

// handle takes one datagram from the peer.
func (p *Participant) handle(b []byte, now time.Time) {
	h, payload, ok := parseRTP(b)
	switch {
	case !ok:
		p.ignored.Add(1)
	case h.pt == p.codec.PayloadType() && len(payload) == frameSamples:
		p.received.Add(1)
		p.jb.insert(h.seq, h.ssrc, payload)
	case p.dtmfPT != 0 && h.pt == p.dtmfPT:
		p.pkt.Version, p.pkt.PayloadType, p.pkt.SSRC = 2, h.pt, h.ssrc
		p.pkt.SequenceNumber, p.pkt.Timestamp, p.pkt.Marker = h.seq, h.ts, h.marker
		p.pkt.Payload = payload
		p.digits = p.rx.Feed(p.digits[:0], &p.pkt, now)
		p.pkt.Payload = nil
		p.deliver()
	default:
		p.ignored.Add(1)
	}
}

func (p *Participant) deliver() {
	for _, d := range p.digits {
		select {
		case p.keys <- d.Key:
		default:
			p.log.Warn("conference key dropped: too many unread", "key", string(d.Key))
		}
	}
	p.digits = p.digits[:0]
}

// pull sets this frame's contribution (in, has) from the jitter buffer and
// the mute switch, fading a change of mute over the frame.
func (p *Participant) pull() {
	p.has = p.jb.pull(&p.in, p.codec)
	muted := p.muted.Load()
	switch {
	case muted && !p.wasMuted:
		if p.has {
			rampDown(&p.in)
		}
	case muted:
		p.has = false
	case p.wasMuted && p.has:
		rampUp(&p.in)
	}
	p.wasMuted = muted
}

// send sends the frame's packet, whose payload is in p.out already.
func (p *Participant) send(frameNo int64) {
	marker := byte(0)
	if p.first < 0 {
		p.first, marker = frameNo, 0x80
	}
	p.out[1] = marker | p.codec.PayloadType()
	binary.BigEndian.PutUint16(p.out[2:], p.seq)
	binary.BigEndian.PutUint32(p.out[4:], p.ts0+uint32(frameNo-p.first)*frameSamples)
	p.seq++
	if err := p.sock.send(p.out[:]); err != nil {
		p.sendErrs.Add(1)
		return
	}
	p.sent.Add(1)
}

// rtpHeader is what the mixer needs of an RTP header.
type rtpHeader struct {
	pt     uint8
	marker bool
	seq    uint16
	ts     uint32
	ssrc   uint32
}

// parseRTP parses an RTP version 2 packet without allocating: its header
// (CSRCs, extension and padding skipped) and payload.
func parseRTP(b []byte) (h rtpHeader, payload []byte, ok bool) {
	if len(b) < headerSize || b[0]>>6 != 2 {
		return h, nil, false
	}
	off, end := headerSize+4*int(b[0]&0x0F), len(b)
	if b[0]&0x10 != 0 { // header extension
		if off+4 > end {
			return h, nil, false
		}
		off += 4 + 4*int(binary.BigEndian.Uint16(b[off+2:]))
	}
	if off > end {
		return h, nil, false
	}
	if b[0]&0x20 != 0 { // padding
		pad := int(b[end-1])
		if pad == 0 || pad > end-off {
			return h, nil, false
		}
		end -= pad
	}
	h = rtpHeader{pt: b[1] & 0x7F, marker: b[1]&0x80 != 0, seq: binary.BigEndian.Uint16(b[2:]),
		ts: binary.BigEndian.Uint32(b[4:]), ssrc: binary.BigEndian.Uint32(b[8:])}
	return h, b[off:end], true
}
