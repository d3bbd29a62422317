package account

import "testing"

var bench10k = GenerateOptions{Users: 10000, Numbers: 20000, SDGs: 1000, Trunks: 4, Seed: 1}

func BenchmarkValidate10k(b *testing.B) {
	s := Generate(bench10k)
	b.ReportAllocs()
	for b.Loop() {
		if err := Validate(s, 0); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDecode10k(b *testing.B) {
	data, err := Generate(bench10k).Encode()
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := DecodeBytes(data); err != nil {
			b.Fatal(err)
		}
	}
}
