package registrar

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/outpost-voice/outpost/account"
	"github.com/outpost-voice/outpost/appliance/store"
)

type countingDir struct {
	reads atomic.Int64
	realm atomic.Value
}

func (d *countingDir) Account(context.Context) (account.Account, error) {
	d.reads.Add(1)
	return account.Account{SIPRealm: d.realm.Load().(string)}, nil
}
func (d *countingDir) Mode(context.Context) (string, time.Time, error) {
	d.reads.Add(1)
	return store.ModeNormal, time.Time{}, nil
}
func (d *countingDir) UserByUsername(_ context.Context, u string) (account.User, error) {
	d.reads.Add(1)
	if u == "alice" {
		return account.User{ID: "u-alice", SIP: account.SIPCredentials{Username: "alice"}}, nil
	}
	return account.User{}, store.ErrNotFound
}

func TestCachedDirectory(t *testing.T) {
	d := &countingDir{}
	d.realm.Store("a.example")
	var gen atomic.Uint64
	c := CachedDirectory(d, gen.Load)
	ctx := context.Background()
	for range 5 {
		if a, _ := c.Account(ctx); a.SIPRealm != "a.example" {
			t.Fatalf("realm %q", a.SIPRealm)
		}
		if _, err := c.UserByUsername(ctx, "alice"); err != nil {
			t.Fatal(err)
		}
		if _, err := c.UserByUsername(ctx, "mallory"); err == nil {
			t.Fatal("unknown user found")
		}
	}
	// 2 (account+mode) + 1 alice + 5 mallory (never cached)
	if got := d.reads.Load(); got != 8 {
		t.Errorf("%d reads of the directory, want 8", got)
	}
	d.realm.Store("b.example")
	if a, _ := c.Account(ctx); a.SIPRealm != "a.example" {
		t.Errorf("cache moved without a new generation: %q", a.SIPRealm)
	}
	gen.Add(1)
	if a, _ := c.Account(ctx); a.SIPRealm != "b.example" {
		t.Errorf("after a new generation: %q, want b.example", a.SIPRealm)
	}
}

// listingDir can list its users, so the cache loads them all at once.
type listingDir struct{ countingDir }

func (d *listingDir) Users(context.Context) ([]account.User, error) {
	d.reads.Add(1)
	return []account.User{{ID: "u-alice", SIP: account.SIPCredentials{Username: "alice"}}}, nil
}

func TestCachedDirectoryLoadsAllUsers(t *testing.T) {
	d := &listingDir{}
	d.realm.Store("a.example")
	var gen atomic.Uint64
	c := CachedDirectory(d, gen.Load)
	ctx := context.Background()
	for range 5 {
		if u, err := c.UserByUsername(ctx, "alice"); err != nil || u.ID != "u-alice" {
			t.Fatalf("alice: %+v %v", u, err)
		}
		if _, err := c.UserByUsername(ctx, "mallory"); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("mallory: %v, want ErrNotFound", err)
		}
	}
	// account + mode + one listing, nothing per lookup
	if got := d.reads.Load(); got != 3 {
		t.Errorf("%d reads of the directory, want 3", got)
	}
}
