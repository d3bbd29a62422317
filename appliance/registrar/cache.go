package registrar

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/outpost-voice/outpost/account"
	"github.com/outpost-voice/outpost/appliance/store"
)

// UserLister lists every user; a directory that has it is cached whole.
type UserLister interface {
	Users(ctx context.Context) ([]account.User, error)
}

// cachedDirectory keeps what the registrar reads from the config plane (the
// account, the mode, users by SIP username) in memory until generation
// moves, which the FSM does after every change of the configuration or the
// mode. When the directory can list its users, all of them are loaded at
// once, so no REGISTER reads the store, and an unknown username costs a map
// lookup; otherwise users are cached as they are found (unknown ones are
// not, so random names cost no memory).
type cachedDirectory struct {
	dir        Directory
	generation func() uint64

	mu       sync.Mutex
	gen      uint64
	valid    bool
	acct     account.Account
	mode     string
	since    time.Time
	users    map[string]account.User
	complete bool // users holds every user of this generation

	load sync.Mutex // one load at a time
}

func (c *cachedDirectory) current(g uint64) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.valid && c.gen == g
}

// CachedDirectory wraps dir with a cache invalidated by generation.
func CachedDirectory(dir Directory, generation func() uint64) Directory {
	return &cachedDirectory{dir: dir, generation: generation}
}

// fresh loads the account, the mode and the users when the generation
// moved. One caller loads; the others wait for it rather than all reading
// the store at once (a burst of REGISTERs after a change would otherwise
// each load every user).
func (c *cachedDirectory) fresh(ctx context.Context) error {
	g := c.generation()
	if c.current(g) {
		return nil
	}
	c.load.Lock()
	defer c.load.Unlock()
	if c.current(g) {
		return nil
	}
	acct, err := c.dir.Account(ctx)
	if err != nil {
		return err
	}
	mode, since, err := c.dir.Mode(ctx)
	if err != nil {
		return err
	}
	users := map[string]account.User{}
	complete := false
	if l, ok := c.dir.(UserLister); ok {
		all, err := l.Users(ctx)
		if err != nil {
			return err
		}
		for _, u := range all {
			users[u.SIP.Username] = u
		}
		complete = true
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gen, c.valid = g, true
	c.acct, c.mode, c.since = acct, mode, since
	c.users, c.complete = users, complete
	return nil
}

func (c *cachedDirectory) Account(ctx context.Context) (account.Account, error) {
	if err := c.fresh(ctx); err != nil {
		return account.Account{}, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.acct, nil
}

func (c *cachedDirectory) Mode(ctx context.Context) (string, time.Time, error) {
	if err := c.fresh(ctx); err != nil {
		return "", time.Time{}, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.mode, c.since, nil
}

func (c *cachedDirectory) UserByUsername(ctx context.Context, username string) (account.User, error) {
	if err := c.fresh(ctx); err != nil {
		return account.User{}, err
	}
	c.mu.Lock()
	u, ok := c.users[username]
	gen, complete := c.gen, c.complete
	c.mu.Unlock()
	if ok {
		return u, nil
	}
	if complete {
		return account.User{}, fmt.Errorf("user %q: %w", username, store.ErrNotFound)
	}
	u, err := c.dir.UserByUsername(ctx, username)
	if err != nil {
		return u, err
	}
	c.mu.Lock()
	if c.gen == gen {
		c.users[username] = u
	}
	c.mu.Unlock()
	return u, nil
}
