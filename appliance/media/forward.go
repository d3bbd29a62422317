package media

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"time"

	"github.com/pion/rtcp"
	"github.com/pion/rtp"
	"github.com/pion/srtp/v3"
)

// bufSize is the largest datagram relayed; one that fills the buffer may
// have been cut and is dropped. SRTP adds at most srtpOverhead bytes.
const (
	bufSize      = 2048
	srtpOverhead = 64
	// maxReadErrors consecutive read errors other than a closed socket
	// stop a reader (the session then times out) instead of spinning.
	maxReadErrors = 100
)

// srtpKeys are the SRTP contexts of one side. A pion context is not safe
// for concurrent use, so each has a single user: rx* the side's own
// readers, tx* the readers of the other side.
type srtpKeys struct {
	rxRTP, rxRTCP *srtp.Context
	txRTP, txRTCP *srtp.Context
}

func newSRTPKeys(local, remote Crypto) (*srtpKeys, error) {
	var k srtpKeys
	var err error
	if k.rxRTP, err = remote.context(true); err != nil {
		return nil, fmt.Errorf("remote key: %w", err)
	}
	if k.rxRTCP, err = remote.context(true); err != nil {
		return nil, fmt.Errorf("remote key: %w", err)
	}
	if k.txRTP, err = local.context(false); err != nil {
		return nil, fmt.Errorf("local key: %w", err)
	}
	if k.txRTCP, err = local.context(false); err != nil {
		return nil, fmt.Errorf("local key: %w", err)
	}
	return &k, nil
}

// scratch is what the goroutine that reads a socket reuses for every
// packet.
type scratch struct {
	buf []byte
	// rxAt is the kernel's arrival stamp of the packet in buf (Unix ns),
	// zero unless Config.Residence asked for stamps.
	rxAt    int64
	plain   []byte // SRTP only, made on first use
	cipher  []byte
	rtpHdr  rtp.Header
	rtcpHdr rtcp.Header
}

func newScratch() scratch { return scratch{buf: make([]byte, bufSize)} }

// handle checks one packet from the side's party and forwards it to the
// other side. It must not allocate on the common path.
func (e *endpoint) handle(rd *scratch, pkt []byte, src netip.AddrPort) {
	side := e.side
	s := side.s
	src = netip.AddrPortFrom(src.Addr().Unmap(), src.Port())
	keys := side.srtp.Load()
	pkt, ssrc, err := rd.open(e.rtcp, keys, pkt)
	if err != nil {
		if keys != nil {
			e.drops.srtp.Add(1)
		} else {
			e.drops.invalid.Add(1)
		}
		return
	}

	now := s.relay.now()
	if g := e.announceGen.Load(); g != e.latchGen {
		e.latchGen = g
		e.latch.reset()
	}
	prev := e.latch.addr
	ok, moved := e.latch.accept(e.policy, src, ssrc, now)
	if !ok {
		e.drops.source.Add(1)
		if !e.warned {
			e.warned = true
			s.log.Warn("media from a source other than the latched one dropped",
				"side", side.name, "rtcp", e.rtcp, "source", src, "latched", e.latch.addr)
		}
		return
	}
	if moved {
		to := src
		e.dest.Store(&to)
		e.latched.Store(true)
		e.latches.Add(1)
		if prev.IsValid() {
			s.log.Info("media source moved, re-latched", "side", side.name, "rtcp", e.rtcp,
				"remote", src, "previous", prev, "ssrc", ssrc)
		} else {
			s.log.Debug("media latched", "side", side.name, "rtcp", e.rtcp, "remote", src, "ssrc", ssrc)
		}
	}
	s.touch(now)

	out := &side.peer.rtp
	if e.rtcp {
		out = &side.peer.rtcp
	}
	dst := out.dest.Load()
	if dst == nil {
		e.drops.noRoute.Add(1)
		return
	}
	if pk := side.peer.srtp.Load(); pk != nil {
		if pkt, err = rd.seal(e.rtcp, pk, pkt); err != nil {
			e.drops.srtp.Add(1)
			return
		}
	}
	var sendAt int64
	if rd.rxAt != 0 {
		sendAt = time.Now().UnixNano()
	}
	if err := out.sock.send(pkt, *dst); err != nil {
		e.drops.send.Add(1)
		return
	}
	e.fwdPackets.Add(1)
	e.fwdBytes.Add(uint64(len(pkt)))
	if rd.rxAt != 0 {
		s.relay.cfg.Residence(time.Duration(sendAt - rd.rxAt))
	}
}

// open decrypts pkt if the side speaks SRTP, checks that the result is an
// RTP (or RTCP) version 2 packet and returns it with its (sender) SSRC.
func (rd *scratch) open(isRTCP bool, keys *srtpKeys, pkt []byte) ([]byte, uint32, error) {
	var err error
	if keys != nil && rd.plain == nil {
		rd.plain = make([]byte, bufSize+srtpOverhead)
		rd.cipher = make([]byte, bufSize+srtpOverhead)
	}
	if isRTCP {
		if keys != nil {
			if pkt, err = keys.rxRTCP.DecryptRTCP(rd.plain, pkt, &rd.rtcpHdr); err != nil {
				return nil, 0, err
			}
		}
		if err := checkRTCP(&rd.rtcpHdr, pkt); err != nil {
			return nil, 0, err
		}
		return pkt, binary.BigEndian.Uint32(pkt[4:8]), nil
	}
	if keys != nil {
		pkt, err = keys.rxRTP.DecryptRTP(rd.plain, pkt, &rd.rtpHdr)
	} else {
		_, err = rd.rtpHdr.Unmarshal(pkt)
	}
	if err != nil {
		return nil, 0, err
	}
	if rd.rtpHdr.Version != 2 {
		return nil, 0, errNotV2
	}
	return pkt, rd.rtpHdr.SSRC, nil
}

// seal encrypts pkt for a side that speaks SRTP.
func (rd *scratch) seal(isRTCP bool, keys *srtpKeys, pkt []byte) ([]byte, error) {
	if rd.cipher == nil {
		rd.plain = make([]byte, bufSize+srtpOverhead)
		rd.cipher = make([]byte, bufSize+srtpOverhead)
	}
	if isRTCP {
		return keys.txRTCP.EncryptRTCP(rd.cipher, pkt, &rd.rtcpHdr)
	}
	return keys.txRTP.EncryptRTP(rd.cipher, pkt, &rd.rtpHdr)
}

var (
	errNotV2      = errors.New("not RTP version 2")
	errNotRTCP    = errors.New("not an RTCP packet")
	errRTCPLength = errors.New("RTCP length beyond the datagram")
)

// checkRTCP accepts a (compound) RTCP packet whose first header is version
// 2, of an RTCP type (192-223, RFC 5761) and within the datagram.
func checkRTCP(h *rtcp.Header, pkt []byte) error {
	if err := h.Unmarshal(pkt); err != nil {
		return err
	}
	switch {
	case len(pkt) < 8:
		return errNotRTCP
	case h.Type < 192 || h.Type > 223:
		return errNotRTCP
	case (int(h.Length)+1)*4 > len(pkt):
		return errRTCPLength
	}
	return nil
}
