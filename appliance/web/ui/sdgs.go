package ui

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/outpost-voice/outpost/account"
)

// SDG is a Survivability Distribution Group: its definition from the
// snapshot and its members' live state (calls.GroupStatus).
type SDG struct {
	ID        string
	Name      string
	Extension string
	Site      string
	Route     *account.Route // the definition; nil when not in the snapshot
	Members   []SDGMember    // live, as this node sees them
	// LastAnswered is who took a rotating group's last call.
	LastAnswered string
	// Override is the emergency override in force; nil when none.
	Override *SDGOverride
}

// SDGOverride is an SDG's emergency override: calls walk Route instead of
// the definition's until it is cleared or the cloud supersedes it.
type SDGOverride struct {
	Route *account.Route
	By    string
	At    time.Time
}

// When is the override's time in UTC, to the second.
func (o SDGOverride) When() string { return clock(&o.At) }

// SDGMember is a group member's live state: idle, ringing, busy or
// unregistered.
type SDGMember struct {
	UserID, Username, Name, State string
}

// RouteType is the route's type, or "none".
func (g SDG) RouteType() string {
	if g.Route == nil {
		return "none"
	}
	return g.Route.Type
}

// groups is the data of the SDGs page's live part.
type groups struct {
	Now  time.Time
	Err  string
	SDGs []SDG
}

func (u *UI) groups(ctx context.Context) groups {
	gs, err := readAll(ctx, u, "SDGs", u.d.SDGs)
	return groups{Now: u.d.Now(), Err: err, SDGs: gs}
}

func (u *UI) sdgsPage(c *gin.Context) {
	u.renderSDGs(c, http.StatusOK, sdgsBody{Done: c.Query("done")}, "")
}

// RouteLine is r in one readable line, its fallbacks included, e.g.
// "group of u-alice, u-bob (simultaneous, ring 20s); no answer → user u-carol".
func RouteLine(r *account.Route) string {
	if r == nil {
		return "none"
	}
	var b strings.Builder
	writeRoute(&b, r, 0)
	return b.String()
}

// maxRouteDepth stops a pathological nesting from making a huge line.
const maxRouteDepth = 4

func writeRoute(b *strings.Builder, r *account.Route, depth int) {
	if r == nil {
		b.WriteString("none")
		return
	}
	if depth > maxRouteDepth {
		b.WriteString("…")
		return
	}
	switch r.Type {
	case account.RouteUser, account.RouteSDG:
		fmt.Fprintf(b, "%s %s", r.Type, r.ID)
	case account.RouteNumber:
		fmt.Fprintf(b, "number %s", r.Number)
	case account.RouteGroup:
		fmt.Fprintf(b, "group of %s (%s", strings.Join(r.Members, ", "), cmpOr(r.Strategy, account.StrategySimultaneous))
		if r.RingTimeoutS > 0 {
			fmt.Fprintf(b, ", ring %ds", r.RingTimeoutS)
		}
		b.WriteString(")")
		if r.NoAnswer != nil {
			b.WriteString("; no answer → ")
			writeNested(b, r.NoAnswer, depth)
		}
	case account.RouteIVR:
		fmt.Fprintf(b, "IVR %s", r.Prompt)
		keys := make([]string, 0, len(r.Options))
		for k := range r.Options {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		for i, k := range keys {
			if i == 0 {
				b.WriteString(": ")
			} else {
				b.WriteString(", ")
			}
			fmt.Fprintf(b, "%s → ", k)
			writeNested(b, r.Options[k], depth)
		}
		if r.NoInput != nil {
			b.WriteString("; no input → ")
			writeNested(b, r.NoInput, depth)
		}
	default:
		b.WriteString(r.Type)
	}
}

// writeNested writes a route inside another, bracketed when it has parts
// of its own.
func writeNested(b *strings.Builder, r *account.Route, depth int) {
	if r != nil && (r.Type == account.RouteGroup || r.Type == account.RouteIVR) {
		b.WriteString("[")
		writeRoute(b, r, depth+1)
		b.WriteString("]")
		return
	}
	writeRoute(b, r, depth+1)
}

func cmpOr(s, def string) string {
	if s == "" {
		return def
	}
	return s
}
