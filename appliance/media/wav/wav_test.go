package wav

import (
	"encoding/binary"
	"errors"
	"os"
	"slices"
	"strings"
	"testing"
)

func TestEncodeParse(t *testing.T) {
	in := []int16{0, 1, -1, 32767, -32768, 1234, -4321}
	b := Encode(in)
	a, err := Parse(b)
	if err != nil {
		t.Fatal(err)
	}
	if a.Encoding != PCM16 || a.Len() != len(in) {
		t.Fatalf("got %v with %d samples, want 16-bit PCM with %d", a.Encoding, a.Len(), len(in))
	}
	if got := a.Samples(); !slices.Equal(got, in) {
		t.Errorf("samples = %v, want %v", got, in)
	}
}

// The G.711 files were written by sox; the .raw files are sox's own
// decoding of them to 16-bit PCM, which ours must match exactly.
func TestSoxG711Files(t *testing.T) {
	for _, c := range []struct {
		file string
		enc  Encoding
	}{{"ulaw", MuLaw}, {"alaw", ALaw}} {
		b := readFile(t, "testdata/"+c.file+".wav")
		raw := readFile(t, "testdata/"+c.file+".raw")
		a, err := Parse(b)
		if err != nil {
			t.Fatalf("%s: %v", c.file, err)
		}
		if a.Encoding != c.enc {
			t.Errorf("%s: encoding %v, want %v", c.file, a.Encoding, c.enc)
		}
		want := make([]int16, len(raw)/2)
		for i := range want {
			want[i] = int16(binary.LittleEndian.Uint16(raw[2*i:]))
		}
		if got := a.Samples(); !slices.Equal(got, want) {
			t.Errorf("%s: decoded samples differ from sox's", c.file)
		}
	}
}

func TestParseErrors(t *testing.T) {
	good := Encode([]int16{1, 2, 3})
	patch := func(off int, v uint32, size int) []byte {
		b := slices.Clone(good)
		if size == 2 {
			binary.LittleEndian.PutUint16(b[off:], uint16(v))
		} else {
			binary.LittleEndian.PutUint32(b[off:], v)
		}
		return b
	}
	for _, c := range []struct {
		name string
		in   []byte
		want string
	}{
		{"empty", nil, "no RIFF/WAVE header"},
		{"not riff", []byte("RIFX0000WAVEfmt "), "no RIFF/WAVE header"},
		{"stereo file", readFile(t, "testdata/stereo-44k.wav"), "2 channels"},
		{"float file", readFile(t, "testdata/float.wav"), "format tag 0x3"},
		{"rate", patch(24, 16000, 4), "16000 Hz"},
		{"8-bit pcm", patch(34, 8, 2), "8 bits"},
		{"truncated data", good[:len(good)-2], "data chunk of 6 bytes, only 4"},
		{"no data", good[:36], "no data chunk"},
		{"short fmt", []byte("RIFF\x00\x00\x00\x00WAVEfmt \x0e\x00\x00\x0001234567890123data\x02\x00\x00\x00\x00\x00"), "fmt chunk of 14 bytes"},
		{"empty data", Encode(nil), "no audio"},
	} {
		_, err := Parse(c.in)
		if err == nil || !strings.Contains(err.Error(), c.want) || !errors.Is(err, ErrFormat) {
			t.Errorf("%s: err = %v, want ErrFormat mentioning %q", c.name, err, c.want)
		}
	}
}

func TestParseChunks(t *testing.T) {
	// A LIST chunk of odd size (padded) before fmt, an extensible fmt, and
	// a second data chunk that is ignored.
	var b []byte
	b = append(b, "RIFF\x00\x00\x00\x00WAVE"...)
	b = append(b, "LIST\x03\x00\x00\x00abc\x00"...)
	fmtc := make([]byte, 40)
	binary.LittleEndian.PutUint16(fmtc[0:], extensible)
	binary.LittleEndian.PutUint16(fmtc[2:], 1)
	binary.LittleEndian.PutUint32(fmtc[4:], 8000)
	binary.LittleEndian.PutUint32(fmtc[8:], 8000)
	binary.LittleEndian.PutUint16(fmtc[12:], 1)
	binary.LittleEndian.PutUint16(fmtc[14:], 8)
	binary.LittleEndian.PutUint16(fmtc[16:], 22)
	binary.LittleEndian.PutUint16(fmtc[24:], uint16(MuLaw))
	b = append(b, "fmt \x28\x00\x00\x00"...)
	b = append(b, fmtc...)
	b = append(b, "data\x03\x00\x00\x00\xff\x80\x00\x00"...)
	b = append(b, "data\x01\x00\x00\x00\x7f\x00"...)
	a, err := Parse(b)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := a.Samples(), []int16{0, 32124, -32124}; a.Encoding != MuLaw || !slices.Equal(got, want) {
		t.Errorf("got %v %v, want µ-law %v", a.Encoding, got, want)
	}
}

func FuzzParseWAV(f *testing.F) {
	f.Add(Encode([]int16{0, 100, -100, 32767}))
	f.Add(readFile(f, "testdata/ulaw.wav"))
	f.Add(readFile(f, "testdata/alaw.wav"))
	f.Add(readFile(f, "testdata/stereo-44k.wav")[:100])
	f.Add(readFile(f, "testdata/float.wav"))
	f.Add([]byte("RIFF\x00\x00\x00\x00WAVEdata\xff\xff\xff\xff"))
	f.Fuzz(func(t *testing.T, b []byte) {
		a, err := Parse(b)
		if err != nil {
			return
		}
		s := a.Samples()
		if len(s) == 0 || len(s) != a.Len() {
			t.Fatalf("parsed %d samples, Len %d", len(s), a.Len())
		}
		back, err := Decode(Encode(s))
		if err != nil || !slices.Equal(back, s) {
			t.Fatalf("re-encoded file: %v", err)
		}
	})
}

func readFile(tb testing.TB, name string) []byte {
	tb.Helper()
	b, err := os.ReadFile(name)
	if err != nil {
		tb.Fatal(err)
	}
	return b
}
