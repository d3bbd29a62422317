package web

import (
	"context"
	"fmt"
	"path/filepath"
	"time"

	"github.com/outpost-voice/outpost/appliance/web/ui"
)

// uiDeps connects the web UI (package ui) to this server's status and
// the store: the UI sees the node through these funcs only.
func (s *Server) uiDeps() ui.Deps {
	d := ui.Deps{
		NodeID:  s.deps.NodeID,
		Status:  s.uiStatus,
		Account: s.uiAccount,
		Admins:  s.deps.Reader.Admins,
		Log:     s.deps.Log,

		Bindings: s.uiBindings,
		Calls:    s.uiCalls,
		History:  s.uiHistory,
		SDGs:     s.uiSDGs,
		Join:     s.uiJoin,
		Users:    s.deps.Reader.Users,
		Override: s.uiOverride,

		InviteInfo: s.uiInviteInfo,
		SendSMS:    s.uiSMS,
	}
	if s.deps.Config != nil {
		d.Settings = func() (string, error) {
			y, err := s.deps.Config().Redacted().YAML()
			return string(y), err
		}
	}
	if s.deps.DataDir != "" {
		d.BreakGlassFile = filepath.Join(s.deps.DataDir, ui.BreakGlassFile)
	}
	return d
}

// uiStatus is the status (GET /api/v1/status) as the status page shows it.
func (s *Server) uiStatus(ctx context.Context) (ui.Status, error) {
	st, err := s.status(ctx)
	if err != nil {
		return ui.Status{}, err
	}
	out := ui.Status{
		NodeID: st.NodeID, Site: st.Site, Mode: st.Mode, ModeSince: st.ModeSince,
		Ready: st.Ready, NotReadyReason: st.NotReadyReason, Revision: st.Revision,
		Uptime:   time.Duration(st.UptimeSeconds) * time.Second,
		CloudURL: st.Cloud.URL, CloudReachable: st.Cloud.Reachable,
		LastSyncAt: st.Cloud.LastSyncAt, CloudError: st.Cloud.LastError,
		Leader: st.Leader, Quorum: st.Quorum,
		Registrations: st.Registrations, RegistrationsPerSite: st.RegistrationsPerSite,
		ActiveCalls: st.ActiveCalls, JournalPending: st.JournalPending,
		PromptsMissing: st.PromptsMissing,
	}
	for _, m := range st.Members {
		out.Members = append(out.Members, ui.Member{ID: m.ID, Site: m.Site, RaftAddr: m.RaftAddr, Healthy: m.Healthy, Leader: m.Leader})
	}
	for _, t := range st.Trunks {
		out.Trunks = append(out.Trunks, ui.Trunk{ID: t.ID, Healthy: t.Healthy, State: t.State,
			LastOptionsAt: t.LastOptionsAt, RTTMs: t.RTTMs, LastError: t.LastError})
	}
	return out, nil
}

// uiAccount is what the status page shows of the snapshot: the sites with
// how many users (phones) each has, and the trunks' names.
func (s *Server) uiAccount(ctx context.Context) (ui.Account, error) {
	r := s.deps.Reader
	sites, err := r.Sites(ctx)
	if err != nil {
		return ui.Account{}, fmt.Errorf("read sites: %w", err)
	}
	users, err := r.Users(ctx)
	if err != nil {
		return ui.Account{}, fmt.Errorf("read users: %w", err)
	}
	trunks, err := r.Trunks(ctx)
	if err != nil {
		return ui.Account{}, fmt.Errorf("read trunks: %w", err)
	}
	perSite := map[string]int{}
	for _, u := range users {
		perSite[u.Site]++
	}
	a := ui.Account{TrunkNames: make(map[string]string, len(trunks))}
	for _, st := range sites {
		a.Sites = append(a.Sites, ui.Site{ID: st.ID, Name: st.Name, Capacity: perSite[st.ID]})
	}
	for _, t := range trunks {
		a.TrunkNames[t.ID] = t.Name
	}
	return a, nil
}
