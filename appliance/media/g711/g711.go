package g711

import (
	"fmt"
	"strings"
)

// Codec is a G.711 law. Its value is the static RTP payload type
// (RFC 3551): PCMU is 0, PCMA is 8.
type Codec uint8

// The two laws.
const (
	PCMU Codec = 0 // µ-law, North America and Japan
	PCMA Codec = 8 // A-law, everywhere else
)

// SampleRate is the G.711 sampling rate in Hz, also the RTP clock rate.
const SampleRate = 8000

// ParseCodec returns the codec of an RTP payload type or an SDP encoding
// name ("PCMU", "PCMA", case-insensitive).
func ParseCodec(s string) (Codec, error) {
	switch {
	case s == "0" || strings.EqualFold(s, "PCMU"):
		return PCMU, nil
	case s == "8" || strings.EqualFold(s, "PCMA"):
		return PCMA, nil
	}
	return 0, fmt.Errorf("g711: unknown codec %q: want PCMU (0) or PCMA (8)", s)
}

// PayloadType is the codec's static RTP payload type.
func (c Codec) PayloadType() uint8 { return uint8(c) }

// Valid reports whether c is PCMU or PCMA.
func (c Codec) Valid() bool { return c == PCMU || c == PCMA }

func (c Codec) String() string {
	switch c {
	case PCMU:
		return "PCMU"
	case PCMA:
		return "PCMA"
	}
	return fmt.Sprintf("Codec(%d)", uint8(c))
}

// Silence is the code of a zero sample: what a silent frame is filled with.
func (c Codec) Silence() byte {
	if c == PCMA {
		return 0xD5
	}
	return 0xFF
}

// Encode encodes min(len(dst), len(src)) samples of src into dst and
// returns how many it encoded. An invalid codec encodes as PCMU.
func (c Codec) Encode(dst []byte, src []int16) int {
	n := min(len(dst), len(src))
	dst, src = dst[:n], src[:n]
	if c == PCMA {
		for i, s := range src {
			dst[i] = alawEnc[uint16(s)>>4]
		}
		return n
	}
	for i, s := range src {
		dst[i] = ulawEnc[uint16(s)>>2]
	}
	return n
}

// Decode decodes min(len(dst), len(src)) codes of src into dst and returns
// how many it decoded. An invalid codec decodes as PCMU.
func (c Codec) Decode(dst []int16, src []byte) int {
	n := min(len(dst), len(src))
	dst, src = dst[:n], src[:n]
	t := &ulawDec
	if c == PCMA {
		t = &alawDec
	}
	for i, b := range src {
		dst[i] = t[b]
	}
	return n
}

// EncodeMuLaw returns the µ-law code of a 16-bit linear sample.
func EncodeMuLaw(s int16) byte { return ulawEnc[uint16(s)>>2] }

// DecodeMuLaw returns the 16-bit linear value of a µ-law code.
func DecodeMuLaw(b byte) int16 { return ulawDec[b] }

// EncodeALaw returns the A-law code of a 16-bit linear sample.
func EncodeALaw(s int16) byte { return alawEnc[uint16(s)>>4] }

// DecodeALaw returns the 16-bit linear value of an A-law code.
func DecodeALaw(b byte) int16 { return alawDec[b] }

// Lookup tables, built once from the reference quantisers below. µ-law
// keeps 14 bits of the sample and A-law 13, so the encoders index by the
// sample's top bits (as an unsigned pattern: the quantisers see the same
// two's-complement value).
var (
	ulawEnc [1 << 14]byte
	alawEnc [1 << 12]byte
	ulawDec [256]int16
	alawDec [256]int16
)

func init() {
	for i := range ulawEnc {
		ulawEnc[i] = ulawCompress(int16(uint16(i) << 2))
	}
	for i := range alawEnc {
		alawEnc[i] = alawCompress(int16(uint16(i) << 4))
	}
	for i := range 256 {
		ulawDec[i] = ulawExpand(byte(i))
		alawDec[i] = alawExpand(byte(i))
	}
}

// ulawCompress is G.191's ulaw_compress for one 16-bit sample (14 bits
// significant). Negative values are quantised by their one's complement,
// as in the reference.
func ulawCompress(x int16) byte {
	var absno int32
	if x < 0 {
		absno = int32(^x)>>2 + 33
	} else {
		absno = int32(x)>>2 + 33
	}
	absno = min(absno, 0x1FFF)
	segno := int32(1)
	for i := absno >> 6; i != 0; i >>= 1 {
		segno++
	}
	high := 8 - segno
	low := 0xF - (absno>>segno)&0xF
	out := byte(high<<4 | low)
	if x >= 0 {
		out |= 0x80
	}
	return out
}

// ulawExpand is G.191's ulaw_expand.
func ulawExpand(b byte) int16 {
	sign := int32(-1)
	if b >= 0x80 {
		sign = 1
	}
	m := int32(^b)
	exp := (m >> 4) & 7
	m &= 0xF
	step := int32(4) << (exp + 1)
	return int16(sign * ((0x80 << exp) + step*m + step/2 - 4*33))
}

// alawCompress is G.191's alaw_compress for one 16-bit sample (13 bits
// significant).
func alawCompress(x int16) byte {
	var ix int32
	if x < 0 {
		ix = int32(^x) >> 4
	} else {
		ix = int32(x) >> 4
	}
	if ix > 15 {
		exp := int32(1)
		for ix > 16+15 {
			ix >>= 1
			exp++
		}
		ix -= 16
		ix += exp << 4
	}
	if x >= 0 {
		ix |= 0x80
	}
	return byte(ix) ^ 0x55
}

// alawExpand is G.191's alaw_expand.
func alawExpand(b byte) int16 {
	ix := int32(b^0x55) & 0x7F
	exp := ix >> 4
	m := ix & 0xF
	if exp > 0 {
		m += 16
	}
	m = m<<4 + 8
	if exp > 1 {
		m <<= exp - 1
	}
	if b > 127 {
		return int16(m)
	}
	return int16(-m)
}
