package pcap

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"time"
)

// Link types.
const (
	LinkEthernet = 1
	LinkLinuxSLL = 113
)

const (
	magicMicro = 0xa1b2c3d4
	magicNano  = 0xa1b23c4d
	snapLen    = 65535
	maxRecord  = 1 << 18
)

// ErrNotUDP is returned by UDP for a frame that is not IPv4/UDP.
var ErrNotUDP = errors.New("not an IPv4 UDP packet")

// Record is one captured frame.
type Record struct {
	Time time.Time
	Data []byte // valid until the next call of Next
}

// Reader reads a capture file.
type Reader struct {
	r     io.Reader
	order binary.ByteOrder
	nano  bool
	link  uint32
	hdr   [16]byte
	buf   []byte
}

// NewReader reads the file header.
func NewReader(r io.Reader) (*Reader, error) {
	var h [24]byte
	if _, err := io.ReadFull(r, h[:]); err != nil {
		return nil, fmt.Errorf("read pcap header: %w", err)
	}
	pr := &Reader{r: r}
	switch {
	case binary.LittleEndian.Uint32(h[:]) == magicMicro:
		pr.order = binary.LittleEndian
	case binary.BigEndian.Uint32(h[:]) == magicMicro:
		pr.order = binary.BigEndian
	case binary.LittleEndian.Uint32(h[:]) == magicNano:
		pr.order, pr.nano = binary.LittleEndian, true
	case binary.BigEndian.Uint32(h[:]) == magicNano:
		pr.order, pr.nano = binary.BigEndian, true
	default:
		return nil, fmt.Errorf("read pcap header: magic %x: not a classic pcap file", h[:4])
	}
	pr.link = pr.order.Uint32(h[20:24])
	if pr.link != LinkEthernet && pr.link != LinkLinuxSLL {
		return nil, fmt.Errorf("read pcap header: link type %d: want Ethernet (1) or Linux SLL (113)", pr.link)
	}
	return pr, nil
}

// LinkType is the file's link type.
func (r *Reader) LinkType() uint32 { return r.link }

// Next returns the next frame, or io.EOF after the last.
func (r *Reader) Next() (Record, error) {
	if _, err := io.ReadFull(r.r, r.hdr[:]); err != nil {
		if errors.Is(err, io.EOF) {
			return Record{}, io.EOF
		}
		return Record{}, fmt.Errorf("read pcap record header: %w", err)
	}
	sec, frac := r.order.Uint32(r.hdr[0:4]), r.order.Uint32(r.hdr[4:8])
	n := r.order.Uint32(r.hdr[8:12])
	if n > maxRecord {
		return Record{}, fmt.Errorf("read pcap record: %d bytes captured, more than %d", n, maxRecord)
	}
	if cap(r.buf) < int(n) {
		r.buf = make([]byte, n)
	}
	b := r.buf[:n]
	if _, err := io.ReadFull(r.r, b); err != nil {
		return Record{}, fmt.Errorf("read pcap record of %d bytes: %w", n, err)
	}
	ns := int64(frac) * 1000
	if r.nano {
		ns = int64(frac)
	}
	return Record{Time: time.Unix(int64(sec), ns), Data: b}, nil
}

// UDP returns the addresses and payload of a frame of the reader's link
// type holding IPv4/UDP.
func (r *Reader) UDP(frame []byte) (src, dst netip.AddrPort, payload []byte, err error) {
	return UDP(r.link, frame)
}

// UDP returns the addresses and payload of an IPv4/UDP frame.
func UDP(link uint32, frame []byte) (src, dst netip.AddrPort, payload []byte, err error) {
	var ip []byte
	switch link {
	case LinkEthernet:
		if len(frame) < 14 || binary.BigEndian.Uint16(frame[12:14]) != 0x0800 {
			return src, dst, nil, ErrNotUDP
		}
		ip = frame[14:]
	case LinkLinuxSLL:
		if len(frame) < 16 || binary.BigEndian.Uint16(frame[14:16]) != 0x0800 {
			return src, dst, nil, ErrNotUDP
		}
		ip = frame[16:]
	default:
		return src, dst, nil, ErrNotUDP
	}
	if len(ip) < 20 || ip[0]>>4 != 4 || ip[9] != 17 {
		return src, dst, nil, ErrNotUDP
	}
	ihl := int(ip[0]&0x0F) * 4
	total := int(binary.BigEndian.Uint16(ip[2:4]))
	if ihl < 20 || total < ihl+8 || total > len(ip) || binary.BigEndian.Uint16(ip[6:8])&0x3FFF != 0 {
		return src, dst, nil, ErrNotUDP // truncated, or a fragment
	}
	udp := ip[ihl:total]
	ulen := int(binary.BigEndian.Uint16(udp[4:6]))
	if ulen < 8 || ulen > len(udp) {
		return src, dst, nil, ErrNotUDP
	}
	srcIP := netip.AddrFrom4([4]byte(ip[12:16]))
	dstIP := netip.AddrFrom4([4]byte(ip[16:20]))
	src = netip.AddrPortFrom(srcIP, binary.BigEndian.Uint16(udp[0:2]))
	dst = netip.AddrPortFrom(dstIP, binary.BigEndian.Uint16(udp[2:4]))
	return src, dst, udp[8:ulen], nil
}

// Writer writes a microsecond, little-endian, Ethernet capture.
type Writer struct {
	w    io.Writer
	id   uint16
	buf  []byte
	head bool
}

// NewWriter returns a Writer; the file header is written with the first
// packet (or by Flush).
func NewWriter(w io.Writer) *Writer { return &Writer{w: w} }

func (w *Writer) header() error {
	if w.head {
		return nil
	}
	w.head = true
	var h [24]byte
	binary.LittleEndian.PutUint32(h[0:], magicMicro)
	binary.LittleEndian.PutUint16(h[4:], 2)
	binary.LittleEndian.PutUint16(h[6:], 4)
	binary.LittleEndian.PutUint32(h[16:], snapLen)
	binary.LittleEndian.PutUint32(h[20:], LinkEthernet)
	if _, err := w.w.Write(h[:]); err != nil {
		return fmt.Errorf("write pcap header: %w", err)
	}
	return nil
}

// Flush writes the file header if no packet was written.
func (w *Writer) Flush() error { return w.header() }

// WriteUDP writes an Ethernet/IPv4/UDP frame carrying payload from src to
// dst, captured at t. The UDP checksum is left zero (allowed over IPv4).
func (w *Writer) WriteUDP(t time.Time, src, dst netip.AddrPort, payload []byte) error {
	if err := w.header(); err != nil {
		return err
	}
	if !src.Addr().Is4() || !dst.Addr().Is4() {
		return fmt.Errorf("write pcap record: %v -> %v: IPv4 only", src, dst)
	}
	n := 14 + 20 + 8 + len(payload)
	if n > snapLen {
		return fmt.Errorf("write pcap record: payload of %d bytes too large", len(payload))
	}
	b := append(w.buf[:0], make([]byte, 16+n)...)
	binary.LittleEndian.PutUint32(b[0:], uint32(t.Unix()))
	binary.LittleEndian.PutUint32(b[4:], uint32(t.Nanosecond()/1000))
	binary.LittleEndian.PutUint32(b[8:], uint32(n))
	binary.LittleEndian.PutUint32(b[12:], uint32(n))
	f := b[16:]
	copy(f[0:6], []byte{0x02, 0, 0, 0, 0, 0x02}) // locally administered MACs
	copy(f[6:12], []byte{0x02, 0, 0, 0, 0, 0x01})
	binary.BigEndian.PutUint16(f[12:], 0x0800)
	ip := f[14:]
	ip[0], ip[8], ip[9] = 0x45, 64, 17
	binary.BigEndian.PutUint16(ip[2:], uint16(20+8+len(payload)))
	w.id++
	binary.BigEndian.PutUint16(ip[4:], w.id)
	a, d := src.Addr().As4(), dst.Addr().As4()
	copy(ip[12:16], a[:])
	copy(ip[16:20], d[:])
	binary.BigEndian.PutUint16(ip[10:], checksum(ip[:20]))
	udp := ip[20:]
	binary.BigEndian.PutUint16(udp[0:], src.Port())
	binary.BigEndian.PutUint16(udp[2:], dst.Port())
	binary.BigEndian.PutUint16(udp[4:], uint16(8+len(payload)))
	copy(udp[8:], payload)
	w.buf = b
	if _, err := w.w.Write(b); err != nil {
		return fmt.Errorf("write pcap record: %w", err)
	}
	return nil
}

func checksum(b []byte) uint16 {
	var s uint32
	for i := 0; i+1 < len(b); i += 2 {
		s += uint32(binary.BigEndian.Uint16(b[i:]))
	}
	for s > 0xFFFF {
		s = s>>16 + s&0xFFFF
	}
	return ^uint16(s)
}
