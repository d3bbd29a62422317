package store

import (
	"context"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/outpost-voice/outpost/account"
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

// BenchmarkApplyChanges10k applies one edit (a user renamed, given a new
// extension and DID) to a 10,000-user account in one write transaction:
// what each node does for an edit in the cloud, against
// BenchmarkReplaceConfig10k's whole account.
func BenchmarkApplyChanges10k(b *testing.B) {
	s := openTest(b)
	snap := bigSnapshot(10000, 10000, 1000)
	if err := s.Write(func(tx *Tx) error { return tx.ReplaceConfig(snap, nil) }); err != nil {
		b.Fatal(err)
	}
	rev := snap.Revision
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		u := snap.Users[(i*7919)%len(snap.Users)]
		u.Name = fmt.Sprint("Renamed ", i)
		u.Extension = fmt.Sprint(900000 + i)
		u.Numbers = []string{fmt.Sprintf("+1999%07d", i)}
		rev++
		change := []account.Change{{Kind: account.KindUsers, ID: u.ID, Value: u}}
		if err := s.Write(func(tx *Tx) error { return tx.ApplyChanges(rev, change) }); err != nil {
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

// BenchmarkPutLocalBindings5000 is the registrar's group commit: 5,000
// bindings in one PutLocalBindings call.
//   - insert: 5,000 new bindings into an empty table (a registration storm);
//   - refresh: the same 5,000 bindings re-registered, each newer;
//   - refresh-random: 5,000 of 10,000 stored bindings, picked at random,
//     re-registered (pages all over the table and its indexes).
func BenchmarkPutLocalBindings5000(b *testing.B) {
	b.Run("insert", func(b *testing.B) {
		s := openTest(b)
		batch := benchBindings(5000, "node-1", bt0)
		b.ReportAllocs()
		for b.Loop() {
			b.StopTimer()
			if _, err := s.PruneLocalBindings(at(24 * time.Hour)); err != nil {
				b.Fatal(err)
			}
			b.StartTimer()
			if err := s.PutLocalBindings(batch); err != nil {
				b.Fatal(err)
			}
		}
	})
	refresh := func(b *testing.B, stored int, pick func(rng *rand.Rand) []int) {
		s := openTest(b)
		all := benchBindings(stored, "node-1", bt0)
		if err := s.PutLocalBindings(all); err != nil {
			b.Fatal(err)
		}
		rng := rand.New(rand.NewPCG(1, 2))
		batch := make([]Binding, 5000)
		i := 0
		b.ReportAllocs()
		for b.Loop() {
			b.StopTimer()
			i++
			now := at(time.Duration(i) * time.Second)
			for j, k := range pick(rng) {
				batch[j] = all[k]
				batch[j].CSeq += uint32(i)
				batch[j].Expires = now.Add(time.Hour)
				batch[j].UpdatedAt = now
			}
			b.StartTimer()
			if err := s.PutLocalBindings(batch); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.Run("refresh", func(b *testing.B) {
		order := make([]int, 5000)
		for i := range order {
			order[i] = i
		}
		refresh(b, 5000, func(*rand.Rand) []int { return order })
	})
	b.Run("refresh-random", func(b *testing.B) {
		refresh(b, 10000, func(rng *rand.Rand) []int { return rng.Perm(10000)[:5000] })
	})
}

// BenchmarkBindingsLookup looks up one AOR of 10,000 (two bindings each:
// 20,000 replicated rows, 3,000 of them also newer in local_bindings).
func BenchmarkBindingsLookup(b *testing.B) {
	s := openTest(b)
	replicated := benchBindings(20000, "node-2", bt0)
	putReplicated(b, s, replicated...)
	putLocal(b, s, benchBindings(3000, "node-1", at(time.Second))...)
	r := s.Reader()
	ctx := context.Background()
	now := at(time.Minute)
	i := 0
	b.ReportAllocs()
	for b.Loop() {
		aor := replicated[(i*7919)%len(replicated)].AOR
		bs, err := r.Bindings(ctx, aor, now)
		if err != nil || len(bs) != 2 {
			b.Fatalf("Bindings(%s) = %d bindings, %v; want 2", aor, len(bs), err)
		}
		i++
	}
}
