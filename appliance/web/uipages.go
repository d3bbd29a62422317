package web

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"time"

	"github.com/outpost-voice/outpost/account"
	"github.com/outpost-voice/outpost/appliance/web/ui"
)

// The UI's Phones, Calls, SDGs and Cluster pages read what the API's
// endpoints read, through these funcs.

func (s *Server) uiBindings(ctx context.Context, q string) ([]ui.Binding, error) {
	bs, err := s.bindings(ctx, q)
	if err != nil {
		return nil, err
	}
	out := make([]ui.Binding, 0, len(bs))
	for _, b := range bs {
		out = append(out, ui.Binding{User: b.Username, Name: b.Name, Extension: b.Extension, Site: b.Site,
			Contact: b.Contact, Transport: b.Transport, UserAgent: b.UserAgent, Node: b.Node, Expires: b.Expires,
			AfterRecovery: b.AfterRecovery})
	}
	return out, nil
}

// callJSON is calls.CallStatus as /api/v1/calls writes it: Deps.Calls is
// an opaque JSON value, so the UI reads it the way API clients do.
type callJSON struct {
	CallID   string    `json:"call_id"`
	Caller   string    `json:"caller"`
	Callee   string    `json:"callee"`
	Dialled  string    `json:"dialled"`
	State    string    `json:"state"`
	Route    string    `json:"route"`
	Start    time.Time `json:"start"`
	Answer   time.Time `json:"answer"`
	Anchored bool      `json:"anchored"`
	ID       string    `json:"id"`
	Owner    string    `json:"owner"`
	Parts    []struct {
		User, Name, Number string
	} `json:"participants"`
	Invs []struct {
		Type, User, SDG, Name, Number, State, Reason string
	} `json:"invitations"`
}

func (s *Server) uiCalls(context.Context) ([]ui.Call, error) {
	if s.deps.Calls == nil {
		return nil, nil
	}
	var cs []callJSON
	if err := recode(s.deps.Calls(), &cs); err != nil {
		return nil, fmt.Errorf("read calls: %w", err)
	}
	out := make([]ui.Call, 0, len(cs))
	for _, c := range cs {
		u := ui.Call{CallID: c.CallID, Caller: c.Caller, Callee: c.Callee, Dialled: c.Dialled, State: c.State,
			Route: c.Route, Start: c.Start, Answer: c.Answer, Anchored: c.Anchored, ID: c.ID, Owner: c.Owner}
		if len(c.Invs) > 0 || len(c.Parts) > 2 {
			for _, p := range c.Parts {
				who := p.Name
				if who == "" {
					who = p.Number
				}
				u.Participants = append(u.Participants, who)
			}
		}
		for _, inv := range c.Invs {
			who := inv.User + inv.SDG
			if inv.Type == "callout" {
				who = inv.Name + " " + inv.Number
			}
			line := inv.Type + " " + who + ": " + inv.State
			if inv.Reason != "" && inv.Reason != inv.State {
				line += " (" + inv.Reason + ")"
			}
			u.Invitations = append(u.Invitations, line)
		}
		out = append(out, u)
	}
	return out, nil
}

// uiHistory pages through the journal by offset: the store reads newest
// first from the top, so a page reads offset+limit+1 records.
func (s *Server) uiHistory(ctx context.Context, offset, limit int) ([]ui.CallRecord, bool, error) {
	recs, err := s.deps.Reader.CallRecords(ctx, time.Time{}, offset+limit+1)
	if err != nil {
		return nil, false, err
	}
	more := len(recs) > offset+limit
	recs = recs[min(offset, len(recs)):min(offset+limit, len(recs))]
	out := make([]ui.CallRecord, 0, len(recs))
	for _, r := range recs {
		out = append(out, ui.CallRecord{ID: r.ID, Caller: r.Caller, CallerName: r.CallerName, Callee: r.Callee,
			Dialled: r.Dialled, Destination: r.Destination, Start: r.Start, Answer: r.Answer, End: r.End,
			Disposition: r.Disposition, Status: r.Status, Node: r.Node, Route: r.Route})
	}
	return out, more, nil
}

// groupJSON is calls.GroupStatus as /api/v1/sdgs writes it.
type groupJSON struct {
	ID           string `json:"id"`
	Name         string `json:"name"`
	Extension    string `json:"extension"`
	Site         string `json:"site"`
	LastAnswered string `json:"last_answered"`
	Members      []struct {
		UserID   string `json:"user_id"`
		Username string `json:"username"`
		Name     string `json:"name"`
		State    string `json:"state"`
	} `json:"members"`
}

// uiSDGs is the snapshot's SDGs (definitions) with the live member states
// of /api/v1/sdgs, in snapshot order; a group only the live source knows
// comes last, without a definition.
func (s *Server) uiSDGs(ctx context.Context) ([]ui.SDG, error) {
	defs, err := s.deps.Reader.SDGs(ctx)
	if err != nil {
		return nil, fmt.Errorf("read sdgs: %w", err)
	}
	var live []groupJSON
	if s.deps.Groups != nil {
		g, err := s.deps.Groups(ctx)
		if err != nil {
			return nil, fmt.Errorf("read sdg states: %w", err)
		}
		if err := recode(g, &live); err != nil {
			return nil, fmt.Errorf("read sdg states: %w", err)
		}
	}
	ovs, err := s.deps.Reader.SDGOverrides(ctx)
	if err != nil {
		return nil, err
	}
	overridden := make(map[string]*ui.SDGOverride, len(ovs))
	for _, o := range ovs {
		overridden[o.SDGID] = &ui.SDGOverride{Route: o.Route, By: o.By, At: o.At}
	}
	byID := make(map[string]groupJSON, len(live))
	for _, g := range live {
		byID[g.ID] = g
	}
	out := make([]ui.SDG, 0, len(defs))
	add := func(d account.SDG, g groupJSON) {
		v := ui.SDG{ID: d.ID, Name: d.Name, Extension: d.Extension, Site: d.Site, Route: d.Route, LastAnswered: g.LastAnswered,
			Override: overridden[d.ID]}
		for _, m := range g.Members {
			v.Members = append(v.Members, ui.SDGMember{UserID: m.UserID, Username: m.Username, Name: m.Name, State: m.State})
		}
		out = append(out, v)
	}
	seen := map[string]bool{}
	for _, d := range defs {
		seen[d.ID] = true
		add(d, byID[d.ID])
	}
	for _, g := range live {
		if !seen[g.ID] {
			add(account.SDG{ID: g.ID, Name: g.Name, Extension: g.Extension, Site: g.Site}, g)
		}
	}
	return out, nil
}

// recode converts an opaque JSON value (a dependency's answer) into out.
func recode(v, out any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return json.Unmarshal(b, out)
}

// uiJoin adds a voter by serving POST /api/v1/cluster/join in process,
// with the node's admin token: the API's own logic (forwarding to the
// leader included) decides, and its error is what the UI shows.
func (s *Server) uiJoin(ctx context.Context, id, raftAddr string) (int, error) {
	body, err := json.Marshal(JoinRequest{ID: id, RaftAddr: raftAddr})
	if err != nil {
		return http.StatusInternalServerError, err
	}
	return s.serveAPI(ctx, http.MethodPost, "/api/v1/cluster/join", body, nil, "change the cluster")
}

// serveAPI serves one API request in process with the node's admin token
// (the UI's forms act through the API's own handlers); what for says, in
// the error when there is no token, what could not be done. A refusal
// comes back as its status and the API's error, each of its details
// appended.
func (s *Server) serveAPI(ctx context.Context, method, path string, body []byte, header http.Header, whatFor string) (int, error) {
	if s.deps.AdminToken == "" {
		return http.StatusServiceUnavailable, fmt.Errorf("this node has no admin token (http.admin_token_file), so it cannot %s", whatFor)
	}
	req, err := http.NewRequestWithContext(ctx, method, path, bytes.NewReader(body))
	if err != nil {
		return http.StatusInternalServerError, err
	}
	for k, vs := range header {
		for _, v := range vs {
			req.Header.Add(k, v)
		}
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+s.deps.AdminToken)
	req.RemoteAddr = "127.0.0.1:0"
	rec := httptest.NewRecorder()
	s.engine.ServeHTTP(rec, req)
	if rec.Code == http.StatusOK {
		return rec.Code, nil
	}
	var e apiError
	if err := json.Unmarshal(rec.Body.Bytes(), &e); err != nil || e.Error == "" {
		e.Error = fmt.Sprintf("%s %s answered %d", method, path, rec.Code)
	}
	for _, d := range e.Details {
		e.Error += "; " + d.String()
	}
	return rec.Code, errors.New(e.Error)
}

// uiWidgetToken issues a call-widget sign-in token for the Phones page's
// form with the logic of POST /api/v1/embed/tokens (embed.Widget.Issue),
// called directly: the API's answer is the token, which serveAPI does
// not return.
func (s *Server) uiWidgetToken(ctx context.Context, user string, days int, by string) (ui.WidgetToken, int, error) {
	t, status, err := s.widget.Issue(ctx, user, days, by)
	if err != nil {
		return ui.WidgetToken{}, status, err
	}
	return ui.WidgetToken{Token: t.Token, UserID: t.User, Username: t.Username, Name: t.Name, ExpiresAt: t.ExpiresAt}, status, nil
}
