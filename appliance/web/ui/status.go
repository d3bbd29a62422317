package ui

import (
	"context"
	"net/http"
	"slices"
	"time"

	"github.com/gin-gonic/gin"
)

// Status is what the status page shows of the node's status
// (web.Status, /api/v1/status).
type Status struct {
	NodeID         string
	Site           string
	Mode           string // normal, survivability or recovering
	ModeSince      *time.Time
	Ready          bool
	NotReadyReason string
	Revision       int64
	Uptime         time.Duration // how long the node has run

	CloudURL       string
	CloudReachable bool
	LastSyncAt     *time.Time
	CloudError     string

	Leader  string
	Quorum  bool
	Members []Member

	Registrations        int
	RegistrationsPerSite map[string]int
	ActiveCalls          int
	Trunks               []Trunk
	JournalPending       int
	// PromptsMissing names the prompts played from the built-in fallback.
	PromptsMissing []string
}

// Member is one cluster member.
type Member struct {
	ID, Site, RaftAddr string
	Healthy, Leader    bool
}

// Trunk is one SBC trunk's health from this node's OPTIONS probes.
type Trunk struct {
	ID            string
	Name          string // from the snapshot, filled in by the UI
	Healthy       bool
	State         string // unknown, up or down
	LastOptionsAt *time.Time
	RTTMs         *float64
	LastError     string
}

// Account is what the status page shows of the snapshot.
type Account struct {
	Sites      []Site            // in snapshot order
	TrunkNames map[string]string // by trunk ID
}

// Site is one site and how many phones (users) it has.
type Site struct {
	ID, Name string
	Capacity int
}

// SitePhones is a row of the phones table.
type SitePhones struct {
	ID, Name   string
	Registered int
	Capacity   int
	Percent    int
}

// board is the data of the status fragment.
type board struct {
	Now   time.Time
	Err   string // the status could not be read
	S     Status
	Sites []SitePhones
}

// ModeAge is how long the node has been in its mode: since the node
// started when the mode has not changed since the store was made.
func (b board) ModeAge() time.Duration {
	if b.S.ModeSince == nil {
		return b.S.Uptime
	}
	return b.Now.Sub(*b.S.ModeSince)
}

func (u *UI) statusPage(c *gin.Context) {
	sess := sessionOf(c)
	u.render(c, http.StatusOK, "status", page{Title: "Status", Nav: "/", User: sess.user, CSRF: sess.csrf, Body: u.board(c.Request.Context())})
}

// board reads the status and what the page shows with it.
func (u *UI) board(ctx context.Context) board {
	b := board{Now: u.d.Now()}
	st, err := u.d.Status(ctx)
	if err != nil {
		u.d.Log.Warn("ui: read status", "error", err)
		b.Err = "The node's status cannot be read right now: " + err.Error()
		return b
	}
	b.S = st
	acct := u.accountAt(ctx, st.Revision)
	for i := range b.S.Trunks {
		b.S.Trunks[i].Name = acct.TrunkNames[b.S.Trunks[i].ID]
	}
	seen := map[string]bool{}
	for _, s := range acct.Sites {
		seen[s.ID] = true
		n := st.RegistrationsPerSite[s.ID]
		b.Sites = append(b.Sites, SitePhones{ID: s.ID, Name: s.Name, Registered: n, Capacity: s.Capacity, Percent: percent(n, s.Capacity)})
	}
	var extra []string
	for id := range st.RegistrationsPerSite {
		if !seen[id] {
			extra = append(extra, id)
		}
	}
	slices.Sort(extra)
	for _, id := range extra {
		b.Sites = append(b.Sites, SitePhones{ID: id, Registered: st.RegistrationsPerSite[id]})
	}
	return b
}

// accountAt returns the snapshot's names and capacities at revision rev,
// reading them only when the revision changes.
func (u *UI) accountAt(ctx context.Context, rev int64) Account {
	if u.d.Account == nil {
		return Account{}
	}
	u.accountMu.Lock()
	defer u.accountMu.Unlock()
	if u.account != nil && u.accountRev == rev {
		return *u.account
	}
	a, err := u.d.Account(ctx)
	if err != nil {
		u.d.Log.Warn("ui: read account", "error", err)
		if u.account != nil {
			return *u.account
		}
		return Account{}
	}
	u.account, u.accountRev = &a, rev
	return a
}
