package store

import (
	"context"
	"testing"
)

// BenchmarkReplaceConfig10k replaces a 10,000-user account (10,000 DIDs,
// 10,000 numbers[] entries, 1,000 SDGs) in one write transaction.
func BenchmarkReplaceConfig10k(b *testing.B) {
	s := openTest(b)
	snap := bigSnapshot(10000, 10000, 1000)
	raw, err := snap.Encode()
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if err := s.Write(func(tx *Tx) error { return tx.ReplaceConfig(snap, raw) }); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkLookupDial looks up extensions and DIDs of a 10,000-user account.
func BenchmarkLookupDial(b *testing.B) {
	s := openTest(b)
	snap := bigSnapshot(10000, 10000, 1000)
	apply(b, s, snap, nil)
	dials := make([]string, 0, 2*len(snap.Users))
	for _, u := range snap.Users {
		dials = append(dials, u.Extension, u.Numbers[0])
	}
	r := s.Reader()
	ctx := context.Background()
	i := 0
	b.ReportAllocs()
	for b.Loop() {
		if _, err := r.LookupDial(ctx, dials[i%len(dials)]); err != nil {
			b.Fatal(err)
		}
		i++
	}
}

// BenchmarkUserByUsername is the registrar's per-REGISTER lookup.
func BenchmarkUserByUsername(b *testing.B) {
	s := openTest(b)
	snap := bigSnapshot(10000, 10000, 1000)
	apply(b, s, snap, nil)
	r := s.Reader()
	ctx := context.Background()
	i := 0
	b.ReportAllocs()
	for b.Loop() {
		if _, err := r.UserByUsername(ctx, snap.Users[i%len(snap.Users)].SIP.Username); err != nil {
			b.Fatal(err)
		}
		i++
	}
}
