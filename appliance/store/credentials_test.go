package store

import (
	"context"
	"errors"
	"testing"
	"time"
)

func TestCloudCredentialsKeepTheNewestPairing(t *testing.T) {
	s := openTest(t)
	ctx := context.Background()
	if _, found, err := s.Reader().CloudCredentials(ctx); found || err != nil {
		t.Fatalf("an empty store holds credentials: %v, %v", found, err)
	}
	at := time.Date(2026, 11, 23, 4, 0, 0, 0, time.UTC)
	first := CloudCredentials{URL: "https://cloud.example", ApplianceID: "acme-hq", Secret: "s1", PushKey: "00ff", PairedAt: at}
	set := func(c CloudCredentials) (bool, error) {
		var kept bool
		err := s.Write(func(tx *Tx) error {
			var err error
			kept, err = tx.SetCloudCredentials(c)
			return err
		})
		return kept, err
	}
	if kept, err := set(first); !kept || err != nil {
		t.Fatalf("first pairing: kept %v, %v", kept, err)
	}
	older := first
	older.Secret, older.PairedAt = "s0", at.Add(-time.Hour)
	if kept, err := set(older); kept || err != nil {
		t.Errorf("an older pairing: kept %v, %v; want ignored", kept, err)
	}
	if kept, _ := set(first); kept {
		t.Error("the same pairing again was kept as new")
	}
	newer := first
	newer.Secret, newer.PairedAt = "s2", at.Add(time.Minute)
	if kept, err := set(newer); !kept || err != nil {
		t.Errorf("a newer pairing: kept %v, %v", kept, err)
	}
	for _, bad := range []CloudCredentials{
		{URL: "https://x", ApplianceID: "a", Secret: "s", PairedAt: at.Add(time.Hour)}, // no push key
		{URL: "https://x", ApplianceID: "a", Secret: "s", PushKey: "00"},               // no paired_at
	} {
		if _, err := set(bad); !errors.Is(err, ErrInvalidCredentials) {
			t.Errorf("%+v: %v, want ErrInvalidCredentials", bad, err)
		}
	}
	got, found, err := s.Reader().CloudCredentials(ctx)
	if err != nil || !found || got != newer {
		t.Errorf("held %+v, %v, %v; want the newest pairing", got, found, err)
	}
}
