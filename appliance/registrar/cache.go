package registrar

import (
	"context"
	"sync"
	"time"

	"github.com/outpost-voice/outpost/account"
)

// cachedDirectory keeps what the registrar reads from the config plane (the
// account, the mode, users by SIP username) in memory until generation
// moves, which the FSM does after every change of the configuration or the
// mode. Unknown usernames are not cached, so random ones cost no memory.
type cachedDirectory struct {
	dir        Directory
	generation func() uint64

	mu    sync.Mutex
	gen   uint64
	valid bool
	acct  account.Account
	mode  string
	since time.Time
	users map[string]account.User
}

// CachedDirectory wraps dir with a cache invalidated by generation.
func CachedDirectory(dir Directory, generation func() uint64) Directory {
	return &cachedDirectory{dir: dir, generation: generation}
}

// fresh loads the account and mode when the generation moved.
func (c *cachedDirectory) fresh(ctx context.Context) error {
	g := c.generation()
	c.mu.Lock()
	if c.valid && c.gen == g {
		c.mu.Unlock()
		return nil
	}
	c.mu.Unlock()
	acct, err := c.dir.Account(ctx)
	if err != nil {
		return err
	}
	mode, since, err := c.dir.Mode(ctx)
	if err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gen, c.valid = g, true
	c.acct, c.mode, c.since = acct, mode, since
	c.users = map[string]account.User{}
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
	gen := c.gen
	c.mu.Unlock()
	if ok {
		return u, nil
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
