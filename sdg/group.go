package sdg

import (
	"fmt"
	"slices"
	"time"

	"github.com/outpost-voice/outpost/account"
)

// group is a ringing group's state.
type group struct {
	r        *account.Route
	key      string
	hop      int // index of the group's hop in the path
	timeout  time.Duration
	order    []string // members in ringing order (hunts)
	next     int      // index in order of the next member to try
	ringing  []string
	rang     int // members rung so far
	rotating bool
}

// ringTimeout is a group's ring timeout, DefaultRingTimeout when unset.
func ringTimeout(r *account.Route) time.Duration {
	if r.RingTimeoutS <= 0 {
		return DefaultRingTimeout
	}
	return time.Duration(r.RingTimeoutS) * time.Second
}

// startGroup rings a group: all available members, or the first available
// one in the strategy's order.
func (c *Call) startGroup(r *account.Route, loc string) Action {
	switch r.Strategy {
	case account.StrategySimultaneous, account.StrategySequential,
		account.StrategyRotating, account.StrategyLongestIdle:
	default:
		return c.fail(statusServerError, fmt.Errorf("%s: %w: unknown group strategy %q", loc, ErrBadRoute, r.Strategy))
	}
	c.path = append(c.path, "group:"+r.Strategy)
	c.grp = group{
		r:        r,
		key:      loc,
		hop:      len(c.path) - 1,
		timeout:  ringTimeout(r),
		order:    c.ringOrder(r, loc),
		rotating: r.Strategy == account.StrategyRotating,
	}
	c.wait = waitGroup
	if r.Strategy == account.StrategySimultaneous {
		for _, m := range c.grp.order {
			if c.env.state(m).Available() {
				c.grp.ringing = append(c.grp.ringing, m)
			}
		}
		if len(c.grp.ringing) == 0 {
			return c.groupOver()
		}
		c.grp.rang = len(c.grp.ringing)
		return c.ring()
	}
	return c.hunt()
}

// ringOrder lists a group's members, each once, in the order a hunt tries
// them: member order (simultaneous, sequential); after the member who
// answered the group's last call (rotating); least recent call end first,
// never first of all, ties in member order (longest_idle).
func (c *Call) ringOrder(r *account.Route, key string) []string {
	order := make([]string, 0, len(r.Members))
	for _, m := range r.Members {
		if m != "" && !slices.Contains(order, m) {
			order = append(order, m)
		}
	}
	switch r.Strategy {
	case account.StrategyRotating:
		if i := slices.Index(order, c.env.lastAnswered(key)); i >= 0 {
			order = slices.Concat(order[i+1:], order[:i+1])
		}
	case account.StrategyLongestIdle:
		ends := make(map[string]time.Time, len(order))
		for _, m := range order {
			ends[m] = c.env.lastCallEnd(m)
		}
		slices.SortStableFunc(order, func(a, b string) int { return ends[a].Compare(ends[b]) })
	}
	return order
}

// hunt rings the next member in order who is available now, or gives up
// on the group when none is left.
func (c *Call) hunt() Action {
	g := &c.grp
	for g.next < len(g.order) {
		m := g.order[g.next]
		g.next++
		if c.env.state(m).Available() {
			g.ringing = []string{m}
			g.rang++
			return c.ring()
		}
	}
	g.ringing = nil
	return c.groupOver()
}

func (c *Call) ring() Action {
	g := &c.grp
	return Ring{
		Step:        c.next(),
		Users:       slices.Clone(g.ringing),
		Timeout:     g.timeout,
		DisplayName: c.display,
		Group:       g.key,
		Strategy:    g.r.Strategy,
	}
}

func (c *Call) groupEvent(ev Event) Action {
	g := &c.grp
	switch e := ev.(type) {
	case Answered:
		if !slices.Contains(g.ringing, e.User) {
			return Wait{Reason: fmt.Sprintf("answer from %q, who was not rung", e.User)}
		}
		c.path = append(c.path, "member:"+e.User)
		a := Connected{Member: e.User}
		if g.rotating {
			a.Rotation = &Rotation{Group: g.key, Member: e.User}
		}
		return c.connect(a)
	case NoAnswer:
		if g.r.Strategy == account.StrategySimultaneous {
			g.ringing = nil
			return c.groupOver()
		}
		return c.hunt()
	}
	return Wait{Reason: fmt.Sprintf("%T while ringing a group", ev)}
}

// groupOver follows the group's no_answer, or fails the call: every
// available member rang out, or nobody was available.
func (c *Call) groupOver() Action {
	g := c.grp
	c.path[g.hop] += " no_answer"
	if g.r.NoAnswer != nil {
		return c.enter(g.r.NoAnswer, g.key+".no_answer")
	}
	why := fmt.Sprintf("%d member(s) rang out", g.rang)
	if g.rang == 0 {
		why = "nobody was available (busy, unregistered or do not disturb)"
	}
	return c.fail(statusUnavailable, fmt.Errorf("%s: %w: %s and the group has no no_answer route", g.key, ErrNoAnswer, why))
}
