package store

import (
	"context"
	"errors"
	"testing"
	"time"
)

func TestELINMappingsNewestWins(t *testing.T) {
	s := openTest(t)
	ctx := context.Background()
	at := time.Date(2026, 11, 23, 4, 0, 0, 0, time.UTC)
	m := func(user string, updated time.Duration) ELINMapping {
		return ELINMapping{ID: "elin:+15550100", ELIN: "+15550100", Site: "hq", UserID: user,
			CalledAt: at, ExpiresAt: at.Add(2 * time.Hour), UpdatedAt: at.Add(updated)}
	}
	if err := s.PutLocalELINMappings([]ELINMapping{m("u-carol", 0)}); err != nil {
		t.Fatal(err)
	}
	// The shared copy from another node is newer: it wins; an older local
	// write does not go back.
	if err := s.Write(func(tx *Tx) error { return tx.PutELINMappings([]ELINMapping{m("u-dave", time.Second)}) }); err != nil {
		t.Fatal(err)
	}
	if err := s.PutLocalELINMappings([]ELINMapping{m("u-erin", -time.Second)}); err != nil {
		t.Fatal(err)
	}
	got, err := s.Reader().ELINMappings(ctx, []string{"+15550100", "+15550199"})
	if err != nil || len(got) != 1 || got[0].UserID != "u-dave" || !got[0].ExpiresAt.Equal(at.Add(2*time.Hour)) {
		t.Fatalf("ELINMappings = %+v, %v; want dave's, the newest", got, err)
	}
	local, err := s.Reader().LocalELINMappingsSince(ctx, at.Add(-time.Minute))
	if err != nil || len(local) != 1 || local[0].UserID != "u-carol" {
		t.Errorf("local mappings %+v, %v; want carol's (erin's was older)", local, err)
	}
	if err := s.PutLocalELINMappings([]ELINMapping{{ID: "elin:x"}}); !errors.Is(err, ErrInvalidELIN) {
		t.Errorf("an invalid mapping: %v, want ErrInvalidELIN", err)
	}
}
