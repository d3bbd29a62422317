package wav

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/outpost-voice/outpost/appliance/media/g711"
)

// SampleRate is the only rate accepted and written.
const SampleRate = 8000

// Encoding is a WAV format tag.
type Encoding uint16

// The encodings accepted.
const (
	PCM16 Encoding = 1 // 16-bit signed little-endian linear PCM
	ALaw  Encoding = 6 // G.711 A-law, one byte a sample
	MuLaw Encoding = 7 // G.711 µ-law, one byte a sample
)

const extensible = 0xFFFE // WAVE_FORMAT_EXTENSIBLE: the tag is in the sub-format GUID

func (e Encoding) String() string {
	switch e {
	case PCM16:
		return "16-bit PCM"
	case ALaw:
		return "A-law"
	case MuLaw:
		return "µ-law"
	}
	return fmt.Sprintf("format tag %#x", uint16(e))
}

// ErrFormat is wrapped by every error about a file that is not a WAV this
// package accepts.
var ErrFormat = errors.New("unsupported WAV")

// Audio is the sound of a parsed file.
type Audio struct {
	Encoding Encoding
	// Data is the data chunk: little-endian int16 samples for PCM16, one
	// G.711 code per sample otherwise. It aliases the parsed bytes.
	Data []byte
}

// Len is the number of samples.
func (a Audio) Len() int {
	if a.Encoding == PCM16 {
		return len(a.Data) / 2
	}
	return len(a.Data)
}

// Samples decodes the audio to 16-bit linear samples in a new slice.
func (a Audio) Samples() []int16 {
	out := make([]int16, a.Len())
	switch a.Encoding {
	case PCM16:
		for i := range out {
			out[i] = int16(binary.LittleEndian.Uint16(a.Data[2*i:]))
		}
	case ALaw:
		g711.PCMA.Decode(out, a.Data)
	case MuLaw:
		g711.PCMU.Decode(out, a.Data)
	}
	return out
}

// Parse reads a WAV file: a RIFF/WAVE container with a fmt chunk and a
// data chunk, other chunks (LIST, fact, ...) skipped. The audio must be
// 8000 Hz, one channel, and 16-bit PCM, µ-law or A-law.
func Parse(b []byte) (Audio, error) {
	if len(b) < 12 || string(b[0:4]) != "RIFF" || string(b[8:12]) != "WAVE" {
		return Audio{}, fmt.Errorf("parse wav: no RIFF/WAVE header: %w", ErrFormat)
	}
	// The RIFF size is often wrong (streamed writers); the chunks decide.
	var (
		fmtChunk, data []byte
		haveFmt        bool
		haveData       bool
	)
	rest := b[12:]
	for len(rest) >= 8 {
		id, size := string(rest[0:4]), binary.LittleEndian.Uint32(rest[4:8])
		rest = rest[8:]
		if uint64(size) > uint64(len(rest)) {
			if id == "data" {
				return Audio{}, fmt.Errorf("parse wav: data chunk of %d bytes, only %d in the file: %w", size, len(rest), ErrFormat)
			}
			return Audio{}, fmt.Errorf("parse wav: %q chunk of %d bytes, only %d in the file: %w", id, size, len(rest), ErrFormat)
		}
		body := rest[:size]
		rest = rest[size:]
		if size%2 == 1 && len(rest) > 0 {
			rest = rest[1:] // chunks are padded to an even size
		}
		switch id {
		case "fmt ":
			fmtChunk, haveFmt = body, true
		case "data":
			if !haveData {
				data, haveData = body, true
			}
		}
	}
	if !haveFmt {
		return Audio{}, fmt.Errorf("parse wav: no fmt chunk: %w", ErrFormat)
	}
	if !haveData {
		return Audio{}, fmt.Errorf("parse wav: no data chunk: %w", ErrFormat)
	}
	enc, err := parseFmt(fmtChunk)
	if err != nil {
		return Audio{}, err
	}
	if enc == PCM16 {
		data = data[:len(data)&^1] // a stray odd byte is not a sample
	}
	if len(data) == 0 {
		return Audio{}, fmt.Errorf("parse wav: no audio in the data chunk: %w", ErrFormat)
	}
	return Audio{Encoding: enc, Data: data}, nil
}

func parseFmt(c []byte) (Encoding, error) {
	if len(c) < 16 {
		return 0, fmt.Errorf("parse wav: fmt chunk of %d bytes, want at least 16: %w", len(c), ErrFormat)
	}
	tag := binary.LittleEndian.Uint16(c[0:2])
	channels := binary.LittleEndian.Uint16(c[2:4])
	rate := binary.LittleEndian.Uint32(c[4:8])
	align := binary.LittleEndian.Uint16(c[12:14])
	bits := binary.LittleEndian.Uint16(c[14:16])
	if tag == extensible {
		// cbSize(2) validBits(2) channelMask(4) then the GUID, whose first
		// two bytes are the format tag.
		if len(c) < 40 {
			return 0, fmt.Errorf("parse wav: extensible fmt chunk of %d bytes, want 40: %w", len(c), ErrFormat)
		}
		tag = binary.LittleEndian.Uint16(c[24:26])
	}
	enc := Encoding(tag)
	want := uint16(8)
	switch enc {
	case PCM16:
		want = 16
	case ALaw, MuLaw:
	default:
		return 0, fmt.Errorf("parse wav: %v: want 16-bit PCM, µ-law or A-law: %w", enc, ErrFormat)
	}
	if channels != 1 {
		return 0, fmt.Errorf("parse wav: %d channels: want mono (sox in.wav -c 1 out.wav): %w", channels, ErrFormat)
	}
	if rate != SampleRate {
		return 0, fmt.Errorf("parse wav: %d Hz: want %d Hz (sox in.wav -r 8000 out.wav): %w", rate, SampleRate, ErrFormat)
	}
	if bits != want || align != want/8 {
		return 0, fmt.Errorf("parse wav: %v with %d bits a sample, block align %d: want %d bits, align %d: %w", enc, bits, align, want, want/8, ErrFormat)
	}
	return enc, nil
}

// Decode parses a WAV file and returns its samples.
func Decode(b []byte) ([]int16, error) {
	a, err := Parse(b)
	if err != nil {
		return nil, err
	}
	return a.Samples(), nil
}

// Encode returns an 8 kHz mono 16-bit PCM WAV file holding samples.
func Encode(samples []int16) []byte {
	const header = 44
	n := 2 * len(samples)
	b := make([]byte, header+n)
	copy(b[0:], "RIFF")
	binary.LittleEndian.PutUint32(b[4:], uint32(header-8+n))
	copy(b[8:], "WAVEfmt ")
	binary.LittleEndian.PutUint32(b[16:], 16)
	binary.LittleEndian.PutUint16(b[20:], uint16(PCM16))
	binary.LittleEndian.PutUint16(b[22:], 1)
	binary.LittleEndian.PutUint32(b[24:], SampleRate)
	binary.LittleEndian.PutUint32(b[28:], SampleRate*2)
	binary.LittleEndian.PutUint16(b[32:], 2)
	binary.LittleEndian.PutUint16(b[34:], 16)
	copy(b[36:], "data")
	binary.LittleEndian.PutUint32(b[40:], uint32(n))
	for i, s := range samples {
		binary.LittleEndian.PutUint16(b[header+2*i:], uint16(s))
	}
	return b
}
