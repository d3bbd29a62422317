package web

import (
	"context"
	"fmt"
	"net/http"
	"time"

	"github.com/gin-gonic/gin"
)

// Status is GET /api/v1/status and `outpost status --json`
// (shared/CONTRACT.md, "HTTP"). Fields of features not built yet report zero.
type Status struct {
	NodeID        string         `json:"node_id"`
	Site          string         `json:"site"`
	Mode          string         `json:"mode"`
	ModeSince     *time.Time     `json:"mode_since,omitempty"`
	Leader        string         `json:"leader"`
	Quorum        bool           `json:"quorum"`
	Members       []MemberStatus `json:"members"`
	Revision      int64          `json:"revision"`
	Registrations int            `json:"registrations"`
	// RegistrationsPerSite splits Registrations by the users' sites.
	RegistrationsPerSite map[string]int `json:"registrations_per_site,omitempty"`
	ActiveCalls          int            `json:"active_calls"`
	Trunks               []TrunkStatus  `json:"trunks"`
	Cloud                CloudStatus    `json:"cloud"`
	JournalPending       int            `json:"journal_pending"`
	// VoicemailPending counts voicemail messages the cloud has not taken.
	VoicemailPending int    `json:"voicemail_pending"`
	UptimeSeconds    int64  `json:"uptime_s"`
	Ready            bool   `json:"ready"`
	NotReadyReason   string `json:"not_ready_reason,omitempty"`
	// HTTPSAddr is the HTTPS listener's address (http.tls_listen, bound);
	// absent when HTTPS is off.
	HTTPSAddr string `json:"https_addr,omitempty"`

	// PromptsMissing lists, sorted, the prompt names this node plays a
	// built-in prompt for instead of what the account configured (a
	// custom recording not fetched yet, damaged or not playable; a name
	// with neither a recording nor a built-in prompt). Empty when every
	// prompt plays as configured.
	PromptsMissing []string `json:"prompts_missing"`
}

// MemberStatus is one cluster member as this node sees it.
type MemberStatus struct {
	ID       string `json:"id"`
	RaftAddr string `json:"raft_addr"`
	HTTPAddr string `json:"http_addr,omitempty"`
	Site     string `json:"site"`
	Healthy  bool   `json:"healthy"`
	Leader   bool   `json:"leader"`
}

// TrunkStatus is one SBC trunk's health, from this node's OPTIONS probes.
type TrunkStatus struct {
	ID            string     `json:"id"`
	Healthy       bool       `json:"healthy"`         // usable: up, or not probed yet
	State         string     `json:"state"`           // unknown, up or down
	LastOptionsAt *time.Time `json:"last_options_at"` // the last answer that said alive
	RTTMs         *float64   `json:"rtt_ms"`          // that answer's round trip
	LastError     string     `json:"last_error"`
}

// CloudStatus is the control plane's reachability as the leader last saw it.
type CloudStatus struct {
	URL        string     `json:"url"`
	Reachable  bool       `json:"reachable"`
	LastSyncAt *time.Time `json:"last_sync_at"`
	LastError  string     `json:"last_error"`
	// OverridesReport is what the cloud holds of the SDG overrides, as
	// the leader knows it; absent when not paired, or when the node
	// cannot hear from the leader.
	OverridesReport *OverridesReport `json:"overrides_report,omitempty"`
}

func (s *Server) cloudStatus(ctx context.Context) CloudStatus {
	if s.deps.Cloud != nil {
		if st := s.deps.Cloud(ctx); st != nil {
			return *st
		}
	}
	return CloudStatus{URL: s.deps.CloudURL}
}

func (s *Server) getStatus(c *gin.Context) {
	st, err := s.status(c.Request.Context())
	if err != nil {
		fail(c, http.StatusInternalServerError, "read status: %v", err)
		return
	}
	c.JSON(http.StatusOK, st)
}

func (s *Server) status(ctx context.Context) (Status, error) {
	r := s.deps.Reader
	rev, err := r.Revision(ctx)
	if err != nil {
		return Status{}, fmt.Errorf("read revision: %w", err)
	}
	mode, since, err := r.Mode(ctx)
	if err != nil {
		return Status{}, fmt.Errorf("read mode: %w", err)
	}
	members, err := s.members(ctx)
	if err != nil {
		return Status{}, err
	}
	leader, _ := s.deps.Cluster.Leader()
	st := Status{
		NodeID:        s.deps.NodeID,
		Site:          s.deps.Site,
		Mode:          mode,
		Leader:        leader,
		Quorum:        s.deps.Cluster.HasQuorum(),
		Members:       members,
		Revision:      rev,
		Trunks:        []TrunkStatus{},
		Cloud:         s.cloudStatus(ctx),
		UptimeSeconds: int64(time.Since(s.started).Seconds()),
		HTTPSAddr:     s.deps.HTTPSAddr,
	}
	if !since.IsZero() {
		st.ModeSince = &since
	}
	if s.deps.JournalPending != nil {
		if st.JournalPending, err = s.deps.JournalPending(ctx); err != nil {
			return Status{}, fmt.Errorf("count journal: %w", err)
		}
	}
	if s.deps.VoicemailPending != nil {
		if st.VoicemailPending, err = s.deps.VoicemailPending(ctx); err != nil {
			return Status{}, fmt.Errorf("count voicemail: %w", err)
		}
	}
	if s.deps.ActiveCalls != nil {
		st.ActiveCalls = s.deps.ActiveCalls()
	}
	if s.deps.Trunks != nil {
		st.Trunks = append(st.Trunks, s.deps.Trunks()...)
	}
	st.PromptsMissing = []string{}
	if s.deps.PromptsMissing != nil {
		st.PromptsMissing = append(st.PromptsMissing, s.deps.PromptsMissing()...)
	}
	if s.deps.Registrations != nil {
		if st.Registrations, st.RegistrationsPerSite, err = s.deps.Registrations(ctx); err != nil {
			return Status{}, fmt.Errorf("count registrations: %w", err)
		}
	}
	if err := s.deps.Ready(); err != nil {
		st.NotReadyReason = err.Error()
	} else {
		st.Ready = true
	}
	return st, nil
}

// members joins Raft's configuration (who votes) with the replicated member
// records (where each node's site and HTTP API are) and the health probes.
func (s *Server) members(ctx context.Context) ([]MemberStatus, error) {
	voters, err := s.deps.Cluster.Members()
	if err != nil {
		return nil, err
	}
	recs, err := s.deps.Reader.Members(ctx)
	if err != nil {
		return nil, fmt.Errorf("read members: %w", err)
	}
	out := make([]MemberStatus, 0, len(voters))
	for _, v := range voters {
		m := MemberStatus{ID: v.ID, RaftAddr: v.RaftAddr, Leader: v.Leader, Healthy: s.deps.Healthy(v.ID)}
		for _, r := range recs {
			if r.ID == v.ID {
				m.Site, m.HTTPAddr = r.Site, r.HTTPAddr
			}
		}
		out = append(out, m)
	}
	return out, nil
}

func (s *Server) livez(c *gin.Context) {
	c.JSON(http.StatusOK, gin.H{"status": "alive", "node_id": s.deps.NodeID})
}

// readyz answers 200 once the node can serve, else 503 with the API's
// error body saying why not.
func (s *Server) readyz(c *gin.Context) {
	if err := s.deps.Ready(); err != nil {
		fail(c, http.StatusServiceUnavailable, "not ready: %v", err)
		return
	}
	c.JSON(http.StatusOK, gin.H{"status": "ready"})
}
