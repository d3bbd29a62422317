package embed

import (
	"context"
	"errors"
	"io"
	"net/http"
	"slices"

	"github.com/gin-gonic/gin"

	"github.com/outpost-voice/outpost/appliance/calls"
)

// ActionResponse answers POST /embed/api/action, whatever its status:
// Messages are for the widget to post to its host as they are (a
// zcc-error when the request was refused or failed).
type ActionResponse struct {
	OK bool `json:"ok"`
	// EngagementID is the engagement the request started (onclicktoact,
	// zcc-add-call).
	EngagementID string    `json:"engagementId,omitempty"`
	Messages     []Message `json:"messages"`
	// Error, Code and Field: why it was refused (Code is zcc-error's).
	Error string `json:"error,omitempty"`
	Code  string `json:"code,omitempty"`
	Field string `json:"field,omitempty"`
}

// action validates one host request and acts on the user's calls.
func (w *Widget) action(c *gin.Context) {
	if !jsonRequest(c) {
		fail(c, http.StatusUnsupportedMediaType, "send the body as JSON, with Content-Type: application/json")
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(c.Writer, c.Request.Body, maxActionBody))
	if err != nil {
		w.refuse(c, http.StatusRequestEntityTooLarge, &Problem{Code: CodeInvalidInput, Field: "body", Message: "body: at most 16 KiB"})
		return
	}
	a, err := DecodeAction(body)
	var p *Problem
	if errors.As(err, &p) {
		w.refuse(c, http.StatusBadRequest, p)
		return
	}
	if w.d.Calls == nil {
		w.refuse(c, http.StatusServiceUnavailable, &Problem{Code: CodeNotSupported, Message: "this node has no call engine: calls cannot be controlled here"})
		return
	}
	u := userOf(c)
	username := u.SIP.Username
	if (engagementRequests[a.Type] || a.EngagementID != "") && !w.hasEngagement(username, a.EngagementID) {
		w.refuse(c, http.StatusBadRequest, unknownEngagement(a.EngagementID))
		return
	}
	res, err := w.do(c.Request.Context(), username, a)
	switch {
	case errors.Is(err, calls.ErrNoEngagement):
		w.refuse(c, http.StatusBadRequest, unknownEngagement(a.EngagementID))
		return
	case errors.Is(err, calls.ErrBadDestination):
		field := "destination"
		if a.Type == ReqClickToCall {
			field = "phone"
		}
		w.refuse(c, http.StatusBadRequest, invalid(field, "%v", err))
		return
	case errors.Is(err, calls.ErrNotSupported):
		w.refuse(c, http.StatusConflict, &Problem{Code: CodeNotSupported, Message: a.Type + ": " + err.Error()})
		return
	case err != nil:
		w.d.Log.Warn("embed: action failed", "user", username, "type", a.Type, "engagement_id", a.EngagementID, "error", err)
		w.refuse(c, http.StatusBadGateway, &Problem{Code: CodeCallFailed, Message: a.Type + ": " + err.Error()})
		return
	}
	w.d.Log.Debug("embed: action", "user", username, "type", a.Type, "engagement_id", a.EngagementID, "request_id", a.RequestID)
	if res.Messages == nil {
		res.Messages = []Message{}
	}
	res.OK = true
	c.JSON(http.StatusOK, res)
}

func unknownEngagement(id string) *Problem {
	return invalid("engagementId", "%q is not one of this user's engagements (it may have ended)", truncate(id, 64))
}

// refuse answers a refused request with the zcc-error the widget posts.
func (w *Widget) refuse(c *gin.Context, status int, p *Problem) {
	c.AbortWithStatusJSON(status, ActionResponse{
		Error: p.Message, Code: p.Code, Field: p.Field,
		Messages: []Message{errorMessage(p.Code, p.Message)},
	})
}

func (w *Widget) hasEngagement(username, id string) bool {
	return slices.ContainsFunc(w.d.Calls.Engagements(username), func(e calls.Engagement) bool { return e.ID == id })
}

// do acts on a validated request through the backend.
func (w *Widget) do(ctx context.Context, username string, a Action) (ActionResponse, error) {
	b := w.d.Calls
	var res ActionResponse
	var err error
	switch a.Type {
	case ReqAccept:
		err = b.Accept(ctx, username, a.EngagementID)
	case ReqReject:
		err = b.Reject(ctx, username, a.EngagementID)
	case ReqTerminate:
		err = b.Hangup(ctx, username, a.EngagementID)
	case ReqSetMute:
		err = b.Mute(ctx, username, a.EngagementID, a.On)
	case ReqSetHold:
		err = b.Hold(ctx, username, a.EngagementID, a.On)
	case ReqSendDTMF:
		err = b.SendDTMF(ctx, username, a.EngagementID, a.Digit)
	case ReqTransfer:
		err = b.Transfer(ctx, username, a.EngagementID, a.Destination, a.Warm)
	case ReqAddCall:
		var e calls.Engagement
		e, err = b.AddCall(ctx, username, a.EngagementID, a.Destination)
		res.EngagementID = e.ID
	case ReqCancelConsult:
		err = b.CancelConsult(ctx, username, a.EngagementID)
	case ReqCompleteTransfer:
		err = b.CompleteTransfer(ctx, username, a.EngagementID)
	case ReqMergeConsult:
		err = b.MergeConsult(ctx, username, a.EngagementID)
	case ReqStatus:
		res.Messages = []Message{statusResponse(a.RequestID, b.Engagements(username), a.EngagementID)}
	case ReqAgentStatusGet:
		res.Messages = []Message{{Type: MsgAgentStatus, Data: agentStatus(b.AgentStatus(username))}}
	case ReqAgentStatusSet:
		// The notification comes on the event stream, as for any change.
		err = b.SetAgentStatus(username, a.Status)
	case ReqClickToCall:
		var e calls.Engagement
		e, err = b.ClickToCall(ctx, username, a.Phone)
		res.EngagementID = e.ID
	}
	return res, err
}
