package g711

import (
	"math"
	"testing"
)

// Reference points of ITU-T G.711 (as computed by the G.191 reference
// implementation and tabulated in the recommendation).
func TestMuLawReference(t *testing.T) {
	enc := []struct {
		in   int16
		want byte
	}{
		{0, 0xFF}, {-1, 0x7F}, {3, 0xFF}, {4, 0xFE}, {-4, 0x7F}, {-5, 0x7E},
		{32767, 0x80}, {-32768, 0x00}, {32124, 0x80}, {-32124, 0x00},
		{8, 0xFE}, {120, 0xF0}, {132, 0xEF}, {-132, 0x6F},
		{1000, 0xCE}, {-1000, 0x4E},
	}
	for _, c := range enc {
		if got := EncodeMuLaw(c.in); got != c.want {
			t.Errorf("EncodeMuLaw(%d) = %#02x, want %#02x", c.in, got, c.want)
		}
	}
	dec := []struct {
		in   byte
		want int16
	}{
		{0xFF, 0}, {0x7F, 0}, {0x80, 32124}, {0x00, -32124}, {0xFE, 8},
		{0x7E, -8}, {0xF0, 120}, {0xEF, 132}, {0xCE, 988}, {0x4E, -988},
		{0xA0, 7932}, {0x90, 15996},
	}
	for _, c := range dec {
		if got := DecodeMuLaw(c.in); got != c.want {
			t.Errorf("DecodeMuLaw(%#02x) = %d, want %d", c.in, got, c.want)
		}
	}
}

func TestALawReference(t *testing.T) {
	enc := []struct {
		in   int16
		want byte
	}{
		{0, 0xD5}, {-1, 0x55}, {15, 0xD5}, {16, 0xD4}, {-17, 0x54},
		{32767, 0xAA}, {-32768, 0x2A}, {1000, 0xFA}, {-1000, 0x7A},
	}
	for _, c := range enc {
		if got := EncodeALaw(c.in); got != c.want {
			t.Errorf("EncodeALaw(%d) = %#02x, want %#02x", c.in, got, c.want)
		}
	}
	dec := []struct {
		in   byte
		want int16
	}{
		{0xD5, 8}, {0x55, -8}, {0xD4, 24}, {0xAA, 32256}, {0x2A, -32256},
		{0xFA, 1008}, {0x7A, -1008}, {0xC5, 264},
	}
	for _, c := range dec {
		if got := DecodeALaw(c.in); got != c.want {
			t.Errorf("DecodeALaw(%#02x) = %d, want %d", c.in, got, c.want)
		}
	}
}

// TestRoundTrip checks every 16-bit sample: encoding is monotonic, each
// code's inputs form one interval whose middle is the code's decoded value
// (G.711 reconstructs at the interval midpoint; the extreme codes also take
// the clipped inputs), and every code survives decode then encode.
func TestRoundTrip(t *testing.T) {
	laws := []struct {
		c     Codec
		drop  int // low bits of the input the law ignores, as a value
		negZ  byte
		table *[256]int16
	}{
		{PCMU, 4, 0x7F, &ulawDec},
		{PCMA, 16, 0, &alawDec},
	}
	for _, law := range laws {
		t.Run(law.c.String(), func(t *testing.T) {
			in := make([]int16, 1<<16)
			for i := range in {
				in[i] = int16(i - 1<<15)
			}
			codes := make([]byte, len(in))
			out := make([]int16, len(in))
			if n := law.c.Encode(codes, in); n != len(in) {
				t.Fatalf("Encode = %d, want %d", n, len(in))
			}
			law.c.Decode(out, codes)
			lo := map[byte]int{}
			hi := map[byte]int{}
			for i, x := range in {
				if i > 0 && out[i] < out[i-1] {
					t.Fatalf("%d decodes to %d, below %d's %d", x, out[i], in[i-1], out[i-1])
				}
				if i > 0 && codes[i] != codes[i-1] {
					if _, seen := lo[codes[i]]; seen {
						t.Fatalf("code %#02x taken by two separate input ranges", codes[i])
					}
				}
				if _, seen := lo[codes[i]]; !seen {
					lo[codes[i]] = int(x)
				}
				hi[codes[i]] = int(x)
			}
			if len(lo) != 256 {
				t.Errorf("%d codes used, want 256", len(lo))
			}
			for code, l := range lo {
				h, y := hi[code], int(law.table[code])
				if l == math.MinInt16 || h == math.MaxInt16 || (law.c == PCMU && code == law.negZ) {
					continue // clipped, or µ-law's negative zero (-4..-1 decodes to 0)
				}
				if y < l || y > h || abs(2*y-(l+h)) > law.drop {
					t.Errorf("code %#02x: inputs %d..%d, decodes to %d, not their middle", code, l, h, y)
				}
			}
			for b := range 256 {
				code := byte(b)
				v := law.table[code]
				back := law.c.encode1(v)
				if back != code && (law.c != PCMU || code != law.negZ) {
					t.Errorf("code %#02x decodes to %d, which encodes to %#02x", code, v, back)
				}
			}
		})
	}
}

func (c Codec) encode1(s int16) byte {
	var b [1]byte
	c.Encode(b[:], []int16{s})
	return b[0]
}

func abs(x int) int {
	if x < 0 {
		return -x
	}
	return x
}

func TestCodec(t *testing.T) {
	for _, c := range []struct {
		in   string
		want Codec
	}{{"PCMU", PCMU}, {"pcma", PCMA}, {"0", PCMU}, {"8", PCMA}} {
		got, err := ParseCodec(c.in)
		if err != nil || got != c.want {
			t.Errorf("ParseCodec(%q) = %v, %v, want %v", c.in, got, err, c.want)
		}
	}
	if _, err := ParseCodec("G729"); err == nil {
		t.Error("ParseCodec(G729) succeeded")
	}
	if got := PCMU.Silence(); DecodeMuLaw(got) != 0 {
		t.Errorf("PCMU silence %#02x decodes to %d", got, DecodeMuLaw(got))
	}
	if got := PCMA.Silence(); abs(int(DecodeALaw(got))) > 8 {
		t.Errorf("PCMA silence %#02x decodes to %d", got, DecodeALaw(got))
	}
	if PCMU.PayloadType() != 0 || PCMA.PayloadType() != 8 || Codec(9).Valid() {
		t.Error("payload types wrong")
	}
}

func BenchmarkEncodeFrame(b *testing.B) {
	src := make([]int16, 160)
	for i := range src {
		src[i] = int16(i * 200)
	}
	dst := make([]byte, 160)
	for _, c := range []Codec{PCMU, PCMA} {
		b.Run(c.String(), func(b *testing.B) {
			for b.Loop() {
				c.Encode(dst, src)
			}
		})
	}
}
