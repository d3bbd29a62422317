package web

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/gin-gonic/gin"

	"github.com/outpost-voice/outpost/appliance/calls"
	"github.com/outpost-voice/outpost/appliance/web/ui"
	"github.com/outpost-voice/outpost/invite"
)

// Conferences is what the call endpoints need from the node's calls
// (*calls.B2BUA): invitations to a live call, its ownership, and the way
// in for someone not invited (dial-in number and PIN, SMS invitations).
type Conferences interface {
	CallOwner(id string) (string, error)
	Invite(ctx context.Context, by, id string, r invite.Request) (invite.Invitation, error)
	CancelInvitation(ctx context.Context, by, id, invID string) (invite.Invitation, error)
	RetryInvitation(ctx context.Context, by, id, invID string) (invite.Invitation, error)
	HandOver(ctx context.Context, by, id, to string) error
	InviteInfo(ctx context.Context, by, id string) (calls.InviteInfo, error)
	SendSMS(ctx context.Context, by, id string, r calls.SMSRequest) (calls.SMSResult, error)
}

// actorKey holds who calls a call endpoint: a user's ID, or "" for an
// admin (who acts as the call's owner).
const actorKey = "call.actor"

// requireOwnerOrAdmin lets through the admin's bearer token or a user's
// call widget session token; the handlers then check ownership.
func (s *Server) requireOwnerOrAdmin(c *gin.Context) {
	got, ok := strings.CutPrefix(c.GetHeader("Authorization"), "Bearer ")
	got = strings.TrimSpace(got)
	if ok && s.deps.AdminToken != "" && subtle.ConstantTimeCompare([]byte(got), []byte(s.deps.AdminToken)) == 1 {
		c.Set(actorKey, "")
		c.Next()
		return
	}
	if ok && got != "" && s.widget != nil {
		if u, err := s.widget.UserOfBearer(c.Request.Context(), got); err == nil {
			c.Set(actorKey, u.ID)
			c.Next()
			return
		}
	}
	c.Header("WWW-Authenticate", `Bearer realm="outpost"`)
	fail(c, http.StatusUnauthorized, "send Authorization: Bearer with the admin token or the call owner's widget session token")
}

// actor is who acts on call id: the user, or for an admin the owner.
func (s *Server) actor(c *gin.Context) (string, bool) {
	if s.deps.Conferences == nil {
		fail(c, http.StatusServiceUnavailable, "this node has no call engine")
		return "", false
	}
	v, _ := c.Get(actorKey)
	by, _ := v.(string)
	if by != "" {
		return by, true
	}
	owner, err := s.deps.Conferences.CallOwner(c.Param("id"))
	if err != nil {
		callFail(c, err)
		return "", false
	}
	return owner, true
}

// invitationRequest is the body of POST /api/v1/calls/{id}/invitations.
type invitationRequest struct {
	Type   string `json:"type"`
	User   string `json:"user"`
	SDG    string `json:"sdg"`
	Name   string `json:"name"`
	Number string `json:"number"`
}

func (s *Server) postInvitation(c *gin.Context) {
	var r invitationRequest
	if !bindJSON(c, &r) {
		return
	}
	by, ok := s.actor(c)
	if !ok {
		return
	}
	inv, err := s.deps.Conferences.Invite(c.Request.Context(), by, c.Param("id"),
		invite.Request{Kind: r.Type, User: r.User, SDG: r.SDG, Name: r.Name, Number: r.Number})
	if err != nil {
		callFail(c, err)
		return
	}
	c.JSON(http.StatusCreated, inv)
}

func (s *Server) deleteInvitation(c *gin.Context) {
	by, ok := s.actor(c)
	if !ok {
		return
	}
	inv, err := s.deps.Conferences.CancelInvitation(c.Request.Context(), by, c.Param("id"), c.Param("inv"))
	if err != nil {
		callFail(c, err)
		return
	}
	c.JSON(http.StatusOK, inv)
}

func (s *Server) retryInvitation(c *gin.Context) {
	by, ok := s.actor(c)
	if !ok {
		return
	}
	inv, err := s.deps.Conferences.RetryInvitation(c.Request.Context(), by, c.Param("id"), c.Param("inv"))
	if err != nil {
		callFail(c, err)
		return
	}
	c.JSON(http.StatusCreated, inv)
}

// ownerRequest is the body of POST /api/v1/calls/{id}/owner.
type ownerRequest struct {
	User string `json:"user"`
}

func (s *Server) postOwner(c *gin.Context) {
	var r ownerRequest
	if !bindJSON(c, &r) {
		return
	}
	if r.User == "" {
		fail(c, http.StatusBadRequest, "owner: want {\"user\": \"<user id in the call>\"}")
		return
	}
	by, ok := s.actor(c)
	if !ok {
		return
	}
	if err := s.deps.Conferences.HandOver(c.Request.Context(), by, c.Param("id"), r.User); err != nil {
		callFail(c, err)
		return
	}
	c.JSON(http.StatusOK, gin.H{"owner": r.User})
}

func (s *Server) getInviteInfo(c *gin.Context) {
	by, ok := s.actor(c)
	if !ok {
		return
	}
	info, err := s.deps.Conferences.InviteInfo(c.Request.Context(), by, c.Param("id"))
	if err != nil {
		callFail(c, err)
		return
	}
	c.Header("Cache-Control", "no-store") // it holds the call's PIN
	c.JSON(http.StatusOK, info)
}

// smsRequest is the body of POST /api/v1/calls/{id}/sms.
type smsRequest struct {
	Number string `json:"number"`
	Text   string `json:"text"`
}

func (s *Server) postSMS(c *gin.Context) {
	var r smsRequest
	if !bindJSON(c, &r) {
		return
	}
	by, ok := s.actor(c)
	if !ok {
		return
	}
	res, err := s.deps.Conferences.SendSMS(c.Request.Context(), by, c.Param("id"), calls.SMSRequest{Number: r.Number, Text: r.Text})
	var se *calls.SMSError
	switch {
	case errors.As(err, &se):
		// The SBC refused it: its status goes back, with the trunk.
		c.AbortWithStatusJSON(http.StatusBadGateway, smsFailure{
			apiError: newAPIError(err.Error(), []ErrorDetail{{Message: fmt.Sprintf("SIP %d %s", se.Status, se.Reason)}}),
			Status:   se.Status, Trunk: se.Trunk})
		return
	case err != nil:
		callFail(c, err)
		return
	}
	c.JSON(http.StatusAccepted, res)
}

// smsFailure is the 502 of POST /api/v1/calls/{id}/sms: the API's error
// body with the SIP status the trunk gave.
type smsFailure struct {
	apiError
	Status int    `json:"status"`
	Trunk  string `json:"trunk"`
}

// callFail answers an error of the call engine with its status.
func callFail(c *gin.Context, err error) {
	status, details := callStatus(err), []ErrorDetail(nil)
	switch {
	case errors.Is(err, invite.ErrBadNumber):
		details = []ErrorDetail{{Path: "number", Message: err.Error()}}
	case errors.Is(err, calls.ErrBadSMSText):
		details = []ErrorDetail{{Path: "text", Message: err.Error()}}
	case errors.Is(err, calls.ErrSMSRate):
		c.Header("Retry-After", "60")
	}
	failDetails(c, status, details, "%v", err)
}

// callStatus is the HTTP status of an error of the call engine.
func callStatus(err error) int {
	status := http.StatusInternalServerError
	switch {
	case errors.Is(err, invite.ErrNotOwner):
		status = http.StatusForbidden
	case errors.Is(err, calls.ErrNoCall), errors.Is(err, invite.ErrNoInvitation):
		status = http.StatusNotFound
	case errors.Is(err, invite.ErrBadRequest), errors.Is(err, invite.ErrBadNumber), errors.Is(err, invite.ErrNotParticipant):
		status = http.StatusBadRequest
	case errors.Is(err, invite.ErrDuplicate), errors.Is(err, invite.ErrAlreadyIn), errors.Is(err, invite.ErrUnavailable),
		errors.Is(err, invite.ErrNotActive), errors.Is(err, invite.ErrNotRetryable), errors.Is(err, invite.ErrCallEnded),
		errors.Is(err, calls.ErrNoOwner):
		status = http.StatusConflict
	case errors.Is(err, calls.ErrBadSMSText):
		status = http.StatusBadRequest
	case errors.Is(err, calls.ErrSMSRate):
		status = http.StatusTooManyRequests
	case errors.Is(err, calls.ErrNoMixer), errors.Is(err, calls.ErrNoSMSTrunk), errors.Is(err, errNoCallEngine):
		status = http.StatusServiceUnavailable
	case errors.Is(err, calls.ErrSMSFailed):
		status = http.StatusBadGateway
	}
	return status
}

// uiInviteInfo is the invite panel's information (the Calls page of the
// web UI): GET .../invite-info's logic, called directly as the call's
// owner, as an admin's request would be.
func (s *Server) uiInviteInfo(ctx context.Context, id string) (ui.InviteInfo, int, error) {
	owner, err := s.uiOwner(id)
	if err != nil {
		return ui.InviteInfo{}, callStatus(err), err
	}
	info, err := s.deps.Conferences.InviteInfo(ctx, owner, id)
	if err != nil {
		return ui.InviteInfo{}, callStatus(err), err
	}
	out := ui.InviteInfo{PIN: info.PIN, SMSText: info.SMSText}
	for _, n := range info.DialIn {
		out.DialIn = append(out.DialIn, ui.DialInNumber{Number: n.Number, Site: n.Site})
	}
	return out, http.StatusOK, nil
}

// uiSMS sends the invite panel's SMS: POST .../sms's logic, as the call's
// owner.
func (s *Server) uiSMS(ctx context.Context, id, number, text string) (ui.SMSSent, int, error) {
	owner, err := s.uiOwner(id)
	if err != nil {
		return ui.SMSSent{}, callStatus(err), err
	}
	res, err := s.deps.Conferences.SendSMS(ctx, owner, id, calls.SMSRequest{Number: number, Text: text})
	if err != nil {
		return ui.SMSSent{}, callStatus(err), err
	}
	return ui.SMSSent{Status: res.Status, Trunk: res.Trunk}, http.StatusAccepted, nil
}

func (s *Server) uiOwner(id string) (string, error) {
	if s.deps.Conferences == nil {
		return "", errNoCallEngine
	}
	return s.deps.Conferences.CallOwner(id)
}

// errNoCallEngine: the node's SIP side is not up.
var errNoCallEngine = errors.New("this node has no call engine")
