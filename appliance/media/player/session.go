package player

import (
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/rtp"

	"github.com/outpost-voice/outpost/appliance/media/g711"
)

// Session is one RTP stream. Its methods are safe for concurrent use.
type Session struct {
	p     *Player
	w     PacketWriter
	cfg   SessionConfig
	log   *slog.Logger
	ts0   uint32 // the timestamp of frame 0
	start int64  // when frame 0 is due, player time
	phase int

	index int // in the player's heap, -1 when not; guarded by p.mu

	mu      sync.Mutex
	n       int64 // the next frame to send
	due     int64 // when frame n is due
	wakeAt  int64 // when the pacing goroutine next looks (due, or later while catching up)
	resched bool  // the pacing goroutine keeps the session in its heap
	parked  bool  // out of the heap: nothing to send
	closed  bool
	queue   []*Playback
	item    int        // the current item of queue[0]
	pos     int        // samples (audio) or frames (silence, keys) of the item done
	looped  bool       // the current item is a Loop that has sent its first packet
	tail    []keyStep  // the rest of a key press cut by Stop
	seq     uint16     // the next sequence number
	hdr     rtp.Header // reused for every packet
	buf     [headerSize + frameSamples]byte
	pcm     [frameSamples]int16
	warned  bool

	packets, bytes, writeErrs atomic.Uint64
}

// SessionStats are a session's counters.
type SessionStats struct {
	Packets, Bytes, WriteErrors uint64
}

// Codec is the session's codec.
func (s *Session) Codec() g711.Codec { return s.cfg.Codec }

// SSRC is the session's SSRC.
func (s *Session) SSRC() uint32 { return s.cfg.SSRC }

// Stats returns the session's counters.
func (s *Session) Stats() SessionStats {
	return SessionStats{Packets: s.packets.Load(), Bytes: s.bytes.Load(), WriteErrors: s.writeErrs.Load()}
}

// DueTime is when the player means to send the audio packet with RTP
// timestamp ts (key presses carry the timestamp of their first packet).
func (s *Session) DueTime(ts uint32) time.Time {
	frame := int64(int32(ts-s.ts0)) / frameSamples
	return s.p.epoch.Add(time.Duration(s.start + frame*int64(frameDur)))
}

// Play queues items after whatever is queued and returns their Playback.
// The first packet leaves at the next 20 ms boundary of the stream.
func (s *Session) Play(items ...Item) *Playback {
	pb := newPlayback(items)
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		pb.finish(ErrClosed)
		return pb
	}
	s.queue = append(s.queue, pb)
	if !s.parked {
		s.mu.Unlock()
		return pb
	}
	// Back in the heap at the stream's next frame.
	s.parked = false
	now := s.p.now()
	n := max(s.n, (now-s.start+int64(frameDur)-1)/int64(frameDur))
	s.n, s.due = n, s.start+n*int64(frameDur)
	s.wakeAt = s.due
	s.mu.Unlock()

	s.p.mu.Lock()
	if s.index < 0 {
		s.p.heap.push(s)
	}
	s.p.mu.Unlock()
	s.p.poke()
	return pb
}

// Stop ends what is playing and drops the queue at once (barge-in): the
// playbacks end with ErrStopped. A key press being sent is finished first
// (its end packets), so the far end does not see a stuck key.
func (s *Session) Stop() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.queue) > 0 && s.item < len(s.queue[0].items) {
		// Mid-key when the next step belongs to a key already begun.
		if it := s.queue[0].items[s.item]; s.pos < len(it.keys) && !it.keys[s.pos].gap && !it.keys[s.pos].marker {
			s.tail = append(s.tail, it.keys[s.pos:it.keys[s.pos].last+1]...)
		}
	}
	s.endQueue(ErrStopped)
}

// Close ends the session: its playbacks end with ErrClosed, and once
// Close returns the PacketWriter is not called again.
func (s *Session) Close() {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return
	}
	s.closed = true
	s.tail = nil
	s.endQueue(ErrClosed)
	s.mu.Unlock()

	p := s.p
	p.mu.Lock()
	p.heap.remove(s)
	if _, ok := p.sessions[s]; ok {
		delete(p.sessions, s)
		p.perPhase[s.phase]--
	}
	p.mu.Unlock()
}

func (s *Session) endQueue(err error) {
	for i, pb := range s.queue {
		pb.finish(err)
		s.queue[i] = nil
	}
	s.queue = s.queue[:0]
	s.item, s.pos, s.looped = 0, 0, false
}

// tick sends the frames due at now, at most maxBurst, and says when the
// pacing goroutine should look again (s.resched, s.wakeAt).
func (s *Session) tick(now int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.resched = false
	if s.closed {
		return
	}
	for sent := 0; s.due <= now; sent++ {
		if sent == s.p.maxBurst {
			s.p.late.Add(1)
			s.wakeAt, s.resched = now+int64(catchUpGap), true
			return
		}
		if !s.frame() {
			s.parked = true
			return
		}
		s.n++
		s.due += int64(frameDur)
	}
	s.wakeAt, s.resched = s.due, true
}

// frame sends frame s.n, if there is anything to send.
func (s *Session) frame() bool {
	ts := s.ts0 + uint32(s.n)*frameSamples
	if len(s.tail) > 0 {
		k := s.tail[0]
		s.tail = s.tail[1:]
		s.sendKey(k, ts)
		return true
	}
	for len(s.queue) > 0 {
		pb := s.queue[0]
		if s.item >= len(pb.items) {
			pb.finish(nil)
			s.queue[0] = nil
			s.queue = s.queue[1:]
			s.item, s.pos, s.looped = 0, 0, false
			continue
		}
		it := &pb.items[s.item]
		switch {
		case it.loop:
			first := s.pos == 0
			for n := 0; n < frameSamples; {
				c := copy(s.pcm[n:], it.samples[s.pos%len(it.samples):])
				n += c
				s.pos = (s.pos + c) % len(it.samples)
			}
			s.sendAudio(s.pcm[:], ts, first && !s.looped)
			s.looped = true
			return true
		case s.pos < len(it.samples):
			n := copy(s.pcm[:], it.samples[s.pos:])
			for i := n; i < frameSamples; i++ {
				s.pcm[i] = 0
			}
			s.sendAudio(s.pcm[:], ts, s.pos == 0)
			s.pos += n
			if s.pos >= len(it.samples) {
				s.item, s.pos = s.item+1, 0
			}
			return true
		case s.pos < it.silence:
			s.sendAudio(nil, ts, false)
			s.pos++
			return true
		case s.pos < len(it.keys):
			k := it.keys[s.pos]
			s.pos++
			if k.gap {
				s.sendAudio(nil, ts, false)
			} else {
				s.sendKey(k, ts)
			}
			return true
		}
		s.item, s.pos = s.item+1, 0
	}
	if s.cfg.IdleSilence {
		s.sendAudio(nil, ts, false)
		return true
	}
	return false
}

// sendAudio sends a frame of pcm, or silence when pcm is nil.
func (s *Session) sendAudio(pcm []int16, ts uint32, marker bool) {
	s.hdr.PayloadType = s.cfg.Codec.PayloadType()
	s.hdr.Marker = marker
	s.hdr.Timestamp = ts
	payload := s.buf[headerSize:]
	if pcm == nil {
		sil := s.cfg.Codec.Silence()
		for i := range payload {
			payload[i] = sil
		}
	} else {
		s.cfg.Codec.Encode(payload, pcm)
	}
	s.send(headerSize + frameSamples)
}

func (s *Session) sendKey(k keyStep, ts uint32) {
	s.hdr.PayloadType = s.cfg.DTMFPayloadType
	s.hdr.Marker = k.marker
	s.hdr.Timestamp = ts - k.since*frameSamples
	k.ev.AppendTo(s.buf[headerSize:headerSize])
	s.send(headerSize + 4)
}

func (s *Session) send(n int) {
	s.hdr.SequenceNumber = s.seq
	s.seq++
	if _, err := s.hdr.MarshalTo(s.buf[:headerSize]); err != nil {
		s.writeErrs.Add(1)
		return
	}
	err := s.w.WritePacket(s.buf[:n])
	if err != nil {
		s.writeErrs.Add(1)
		s.p.writeErrs.Add(1)
		if !s.warned {
			s.warned = true
			s.log.Warn("RTP write failed; counting further failures silently", "err", err)
		}
		return
	}
	s.packets.Add(1)
	s.bytes.Add(uint64(n))
	s.p.packets.Add(1)
}
