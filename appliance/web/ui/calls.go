package ui

import (
	"context"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/outpost-voice/outpost/account"
)

// Call history pages.
const (
	historyPage      = 100
	maxHistoryOffset = 100000
)

// Call is a call in progress on this node (calls.CallStatus).
type Call struct {
	CallID   string
	Caller   string
	Callee   string
	Dialled  string
	State    string // routing, ivr, connected
	Route    string // the path through SDGs and IVR menus so far
	Start    time.Time
	Answer   time.Time
	Anchored bool
	ID       string // the call's record ID (the API's call id)
	Owner    string // the owner's user ID
	// Participants (names) and Invitations (one line each) of a call
	// someone was invited to; empty for a plain call.
	Participants []string
	Invitations  []string
}

// CallRecord is a call of the outage journal (store.CallRecord).
type CallRecord struct {
	ID          string
	Caller      string
	CallerName  string
	Callee      string
	Dialled     string
	Destination string
	Start       time.Time
	Answer      time.Time
	End         time.Time
	Disposition string
	Status      int
	Node        string
	Route       string
}

// Duration is how long the call was connected (zero when never answered).
func (r CallRecord) Duration() time.Duration {
	if r.Answer.IsZero() {
		return 0
	}
	return r.End.Sub(r.Answer)
}

// active is the data of the Calls page's live part.
type active struct {
	Now   time.Time
	Err   string
	Calls []Call
	// CanInvite: each call with an owner links to its invite panel.
	CanInvite bool
}

// Invitable says whether a call can take someone by dial-in or SMS: it
// is connected (or a conference) and has an owner.
func (c Call) Invitable() bool {
	return c.ID != "" && c.Owner != "" && (c.State == "connected" || c.State == "conference")
}

// InviteInfo is a call's way in for someone not invited
// (calls.InviteInfo): the dial-in numbers, the PIN, the SMS's default
// text.
type InviteInfo struct {
	DialIn  []DialInNumber
	PIN     string
	SMSText string
}

// DialInNumber is a number that reaches the dial-in, and its site.
type DialInNumber struct {
	Number string
	Site   string
}

// SMSSent is an SMS invitation the SBC took: its SIP status and trunk.
type SMSSent struct {
	Status int
	Trunk  string
}

// invitePanel is the Calls page's invite panel for one call: its invite
// information, the SMS form's values and what the last send did.
type invitePanel struct {
	CallID string
	Err    string // the invite information cannot be read
	Info   InviteInfo
	Number string // the SMS form's values, kept after a refusal
	Text   string
	Sent   string // a notice after an SMS was sent
	SMSErr string
}

// callsBody is the data of the Calls page.
type callsBody struct {
	Active     active
	Invite     *invitePanel // the invite panel of one call, when asked for
	HistoryErr string
	History    []CallRecord
	Offset     int
	Newer      string // link to the newer page; empty on the first
	Older      string // link to the older page; empty on the last
}

func (u *UI) active(ctx context.Context) active {
	cs, err := readAll(ctx, u, "calls", u.d.Calls)
	return active{Now: u.d.Now(), Err: err, Calls: cs, CanInvite: u.d.InviteInfo != nil}
}

func (u *UI) callsPage(c *gin.Context) {
	u.renderCalls(c, http.StatusOK, nil, "")
}

// renderCalls renders the Calls page, with the invite panel of one call
// when panel is set, and msg as the page's error.
func (u *UI) renderCalls(c *gin.Context, status int, panel *invitePanel, msg string) {
	sess := sessionOf(c)
	ctx := c.Request.Context()
	off, _ := strconv.Atoi(c.Query("offset"))
	off = min(max(off, 0), maxHistoryOffset)
	body := callsBody{Active: u.active(ctx), Invite: panel, Offset: off}
	if u.d.History != nil {
		recs, more, err := u.d.History(ctx, off, historyPage)
		if err != nil {
			u.d.Log.Warn("ui: read journal", "error", err)
			body.HistoryErr = "The call history cannot be read right now: " + err.Error()
		}
		body.History = recs
		if more && off+historyPage <= maxHistoryOffset {
			body.Older = "/calls?offset=" + strconv.Itoa(off+historyPage)
		}
	}
	if off > 0 {
		body.Newer = "/calls?offset=" + strconv.Itoa(max(off-historyPage, 0))
	}
	u.render(c, status, "calls", page{Title: "Calls", Nav: "/calls", User: sess.user, CSRF: sess.csrf, Message: msg, Body: body})
}

// maxSMSForm bounds what the SMS form's fields may carry (the API checks
// the text's own limit).
const maxSMSForm = 4096

// invitePage shows a call's invite panel: its dial-in numbers and PIN to
// copy, and the SMS invitation form with the default text (Deps.
// InviteInfo: the API's logic, acting as the call's owner). Asking makes
// the call's PIN, so only an admin may.
func (u *UI) invitePage(c *gin.Context) {
	panel := &invitePanel{CallID: c.Param("id")}
	if status, msg := u.inviteAllowed(c); status != 0 {
		u.renderCalls(c, status, nil, msg)
		return
	}
	status := u.readInvite(c, panel)
	panel.Text = panel.Info.SMSText
	u.renderCalls(c, status, panel, "")
}

// inviteAllowed is the status and message refusing the invite panel to
// this session; 0 when it may.
func (u *UI) inviteAllowed(c *gin.Context) (int, string) {
	switch {
	case u.d.InviteInfo == nil || u.d.SendSMS == nil:
		return http.StatusNotFound, "This node cannot invite into calls from the UI."
	case sessionOf(c).role != account.RoleAdmin:
		return http.StatusForbidden, "Only an admin may see a call's PIN or send an SMS invitation; you are signed in as a viewer."
	}
	return 0, ""
}

// readInvite fills panel's invite information; it returns the status for
// the page (the API's when it was refused).
func (u *UI) readInvite(c *gin.Context, panel *invitePanel) int {
	info, status, err := u.d.InviteInfo(c.Request.Context(), panel.CallID)
	if err != nil {
		u.d.Log.Warn("ui: invite information refused", "call", panel.CallID, "status", status, "error", err)
		panel.Err = "No invite information: " + err.Error()
		if status < 400 {
			status = http.StatusBadGateway
		}
		return status
	}
	panel.Info = info
	return http.StatusOK
}

// sendSMS sends the SMS form's invitation (Deps.SendSMS: the API's logic)
// and shows the panel again, with what happened. Line breaks typed in the
// text become spaces: an SMS invitation is one line.
func (u *UI) sendSMS(c *gin.Context) {
	sess := sessionOf(c)
	panel := &invitePanel{CallID: c.Param("id"), Number: strings.TrimSpace(c.PostForm("number")), Text: c.PostForm("text")}
	if status, msg := u.inviteAllowed(c); status != 0 {
		u.renderCalls(c, status, nil, msg)
		return
	}
	if len(panel.Number) > maxSMSForm || len(panel.Text) > maxSMSForm {
		panel.Number, panel.Text = "", ""
		panel.SMSErr = "The number or the text is far too long."
		u.renderCalls(c, http.StatusBadRequest, panel, "")
		return
	}
	panel.Text = oneLine(panel.Text)
	if panel.Number == "" {
		u.readInvite(c, panel)
		panel.SMSErr = "Number: the invitee's mobile number, + and the country code, e.g. +16505550177."
		u.renderCalls(c, http.StatusBadRequest, panel, "")
		return
	}
	sent, status, err := u.d.SendSMS(c.Request.Context(), panel.CallID, panel.Number, panel.Text)
	u.readInvite(c, panel)
	if err != nil {
		u.d.Log.Warn("ui: sms invitation refused", "call", panel.CallID, "by", sess.user, "status", status, "error", err)
		if status < 400 {
			status = http.StatusBadGateway
		}
		panel.SMSErr = "Not sent: " + err.Error()
		u.renderCalls(c, status, panel, "")
		return
	}
	u.d.Log.Info("ui: sms invitation sent", "call", panel.CallID, "by", sess.user, "trunk", sent.Trunk, "status", sent.Status)
	panel.Sent = "SMS sent to " + panel.Number + " through trunk " + sent.Trunk + " (SIP " + strconv.Itoa(sent.Status) + ")."
	panel.Number, panel.Text = "", panel.Info.SMSText
	u.renderCalls(c, http.StatusOK, panel, "")
}

// oneLine is s with each run of line breaks (and the spaces around them)
// made one space.
func oneLine(s string) string {
	if !strings.ContainsAny(s, "\r\n") {
		return s
	}
	lines := strings.FieldsFunc(s, func(r rune) bool { return r == '\r' || r == '\n' })
	for i := range lines {
		lines[i] = strings.TrimSpace(lines[i])
	}
	return strings.TrimSpace(strings.Join(lines, " "))
}
