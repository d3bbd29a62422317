package sdg

import (
	"fmt"
	"strings"
	"time"

	"github.com/outpost-voice/outpost/account"
)

// menu is an IVR's state.
//
// The prompt plays at most 1 + retries times. A timeout and a key that is
// not an option each use one play; an invalid key is answered with
// PromptInvalid before the prompt plays again. When the last play ends
// without a valid key, the call follows no_input, or fails (480) if the IVR
// has none.
type menu struct {
	r        *account.Route
	key      string
	hop      int
	timeout  time.Duration
	attempt  int
	attempts int
	keys     string
}

// menuKeys is the key order Menu.Keys lists.
const menuKeys = "0123456789*#"

// startMenu plays an IVR's prompt for the first time.
func (c *Call) startMenu(r *account.Route, loc string) Action {
	if r.Prompt == "" {
		return c.fail(statusServerError, fmt.Errorf("%s: %w: an ivr route needs a prompt", loc, ErrBadRoute))
	}
	retries := min(max(r.Retries, 0), account.MaxIVRRetries)
	timeout := DefaultInputTimeout
	if r.TimeoutS > 0 {
		timeout = time.Duration(r.TimeoutS) * time.Second
	}
	var keys strings.Builder
	for _, k := range menuKeys {
		if r.Options[string(k)] != nil {
			keys.WriteRune(k)
		}
	}
	c.path = append(c.path, "ivr:"+r.Prompt)
	c.menu = menu{
		r:        r,
		key:      loc,
		hop:      len(c.path) - 1,
		timeout:  timeout,
		attempt:  1,
		attempts: 1 + retries,
		keys:     keys.String(),
	}
	c.wait = waitMenu
	return c.play("")
}

func (c *Call) play(notice string) Action {
	m := &c.menu
	return Menu{
		Step:     c.next(),
		IVR:      m.key,
		Prompt:   m.r.Prompt,
		Notice:   notice,
		Timeout:  m.timeout,
		Attempt:  m.attempt,
		Attempts: m.attempts,
		Keys:     m.keys,
	}
}

func (c *Call) menuEvent(ev Event) Action {
	m := &c.menu
	switch e := ev.(type) {
	case Digit:
		if len(e.Key) == 1 && strings.Contains(m.keys, e.Key) {
			c.path[m.hop] += " option " + e.Key
			return c.enter(m.r.Options[e.Key], m.key+".options."+e.Key)
		}
		return c.retry(PromptInvalid)
	case InputTimeout:
		return c.retry("")
	}
	return Wait{Reason: fmt.Sprintf("%T while playing a menu", ev)}
}

// retry plays the menu again, or leaves it by no_input when it has been
// played as often as it may.
func (c *Call) retry(notice string) Action {
	m := &c.menu
	if m.attempt < m.attempts {
		m.attempt++
		return c.play(notice)
	}
	c.path[m.hop] += " no_input"
	if m.r.NoInput != nil {
		return c.enter(m.r.NoInput, m.key+".no_input")
	}
	return c.fail(statusUnavailable, fmt.Errorf("%s: ivr %s: %w after %d attempt(s) and no no_input route",
		m.key, m.r.Prompt, ErrNoInput, m.attempts))
}
