package embed

import (
	"fmt"
	"strings"
	"time"

	"github.com/outpost-voice/outpost/account"
	"github.com/outpost-voice/outpost/appliance/calls"
	"github.com/outpost-voice/outpost/appliance/store"
)

// The widget's messages to its host (embed-events.md, widget → host) that
// the server makes; the script makes the others (init-config-request,
// resize, contact-search-event, screen-pop).
const (
	MsgOutboundStarted      = "zcc-outbound-call-started"
	MsgCallRinging          = "zcc-call-ringing"
	MsgIncomingPhone        = "zcc-incomingPhone-request"
	MsgCallConnected        = "zcc-call-connected"
	MsgCallEnded            = "zcc-call-ended"
	MsgInboundNotConnected  = "zcc-inbound-not-connected"
	MsgOutboundNotConnected = "zcc-outbound-not-connected"
	MsgCallLog              = "zcc-phone-call-log"
	MsgAgentStatus          = "zcc-agent-status-notification"
	MsgStatusResponse       = "zcc-engagement-status-response"
	MsgError                = "zcc-error"
)

// Message is one postMessage between the widget and its host.
type Message struct {
	Type string `json:"type"`
	Data any    `json:"data,omitempty"`
}

// ms is t in epoch milliseconds (0 for the zero time).
func ms(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixMilli()
}

// AgentStatusNames name the agent statuses as embed-events.md does.
var AgentStatusNames = map[int]string{
	calls.AgentOffline: "Offline", calls.AgentReady: "Ready", calls.AgentNotReady: "Not Ready", calls.AgentOccupied: "Occupied",
}

// AgentStatus is zcc-agent-status-notification's data.
type AgentStatus struct {
	StatusCode int    `json:"statusCode"`
	Status     string `json:"status"`
}

func agentStatus(code int) AgentStatus {
	name, ok := AgentStatusNames[code]
	if !ok {
		name = fmt.Sprintf("Status %d", code)
	}
	return AgentStatus{StatusCode: code, Status: name}
}

func errorMessage(code, msg string) Message {
	return Message{Type: MsgError, Data: map[string]string{"code": code, "message": msg}}
}

// streamEvent is one Server-Sent Event of /embed/api/events.
type streamEvent struct {
	Name string // "zcc": a message to post to the host; "engagement": the widget's own list
	Data any
}

// translator turns one user's engagement events into the stream's
// events. It remembers each engagement until its call log, whose record
// alone does not say the direction, the parties as the user saw them, or
// the queue.
type translator struct {
	user account.User
	now  func() time.Time
	seen map[string]calls.Engagement
}

// maxRemembered bounds the engagements a stream remembers for their logs.
const maxRemembered = 256

func newTranslator(u account.User, now func() time.Time) *translator {
	return &translator{user: u, now: now, seen: map[string]calls.Engagement{}}
}

// remember keeps e for its call log.
func (t *translator) remember(e calls.Engagement) {
	if _, ok := t.seen[e.ID]; !ok && len(t.seen) >= maxRemembered {
		for id := range t.seen { // forget any one: its log goes out with what the record says
			delete(t.seen, id)
			break
		}
	}
	t.seen[e.ID] = e
}

// translate maps one backend event to the stream's events, in the
// order the widget handles them: the list first, then what the host is
// told (embed-events.md's table).
func (t *translator) translate(ev calls.EngagementEvent) []streamEvent {
	e := ev.Engagement
	var out []streamEvent
	zcc := func(typ string, data any) { out = append(out, streamEvent{"zcc", Message{Type: typ, Data: data}}) }
	if ev.Kind != calls.EvCallLog && ev.Kind != calls.EvAgentStatus && e.ID != "" {
		if ev.Kind == calls.EvEnded || ev.Kind == calls.EvNotConnected {
			e.State = calls.EngEnded
		}
		t.remember(e)
		out = append(out, streamEvent{"engagement", e})
	}
	switch ev.Kind {
	case calls.EvStarted:
		zcc(MsgOutboundStarted, map[string]any{"engagementId": e.ID, "from": e.From, "to": e.To, "queueName": e.Queue, "startTs": ms(e.Created)})
	case calls.EvRinging:
		zcc(MsgCallRinging, map[string]any{"engagementId": e.ID, "from": e.From, "to": e.To, "queueName": e.Queue,
			"createTs": ms(e.Created), "isConference": false, "isTransfer": false})
		if e.Direction == "inbound" {
			zcc(MsgIncomingPhone, map[string]any{"incomingPhoneNumber": e.From, "engagementId": e.ID, "channel": "voice"})
		}
	case calls.EvConnected:
		accept := e.Accepted
		if accept.IsZero() {
			accept = t.now()
		}
		zcc(MsgCallConnected, map[string]any{"engagementId": e.ID, "direction": e.Direction, "from": e.From, "to": e.To,
			"queueId": e.Queue, "queueName": e.Queue, "acceptTs": ms(accept)})
	case calls.EvEnded:
		zcc(MsgCallEnded, map[string]any{"engagementId": e.ID, "completeTs": ms(t.now())})
	case calls.EvNotConnected:
		typ := MsgOutboundNotConnected
		if e.Direction == "inbound" {
			typ = MsgInboundNotConnected
		}
		zcc(typ, map[string]any{"engagementId": e.ID, "reasonCode": ev.Status, "message": notConnectedMessage(ev.Status, ev.Reason)})
	case calls.EvCallLog:
		if ev.Record != nil {
			zcc(MsgCallLog, t.callLog(e, *ev.Record))
		}
	case calls.EvAgentStatus:
		zcc(MsgAgentStatus, agentStatus(ev.AgentStatus))
	}
	return out
}

// CallLogRecord is zcc-phone-call-log's objectRecord.
type CallLogRecord struct {
	CallType       string   `json:"callType"` // inbound or outbound
	From           string   `json:"from"`
	To             string   `json:"to"`
	CallDuration   int64    `json:"callDuration"`  // seconds connected
	CallStartTime  int64    `json:"callStartTime"` // epoch ms
	CallEndTime    int64    `json:"callEndTime"`   // epoch ms
	CallQueue      string   `json:"callQueue"`
	AgentExtension string   `json:"agentExtension"`
	AgentName      string   `json:"agentName"`
	Notes          []string `json:"notes"`
	Type           string   `json:"type"`        // "phone"
	Disposition    string   `json:"disposition"` // Outpost's: answered, busy, no_answer, ...
}

// callLog is zcc-phone-call-log's data for record, the call of the
// engagement last (as the event says it; the stream's own memory of it
// first). Its user (the host's
// contact for the call) is the script's to fill: only it knows the
// host's answers.
func (t *translator) callLog(last calls.Engagement, rec store.CallRecord) map[string]any {
	id := last.ID
	if id == "" {
		id = rec.ID
	}
	e, known := t.seen[id]
	delete(t.seen, id)
	if !known && last.Direction != "" { // the engagement as the backend last knew it
		e, known = last, true
	}
	r := CallLogRecord{
		From: rec.Caller, To: rec.Dialled, CallStartTime: ms(rec.Start), CallEndTime: ms(rec.End),
		AgentExtension: t.user.Extension, AgentName: t.user.Name, Notes: []string{}, Type: "phone", Disposition: rec.Disposition,
	}
	if r.To == "" {
		r.To = rec.Callee
	}
	r.CallType = "inbound"
	if rec.Caller == t.user.SIP.Username {
		r.CallType = "outbound"
	}
	if known {
		r.CallType, r.From, r.To, r.CallQueue = e.Direction, e.From, e.To, e.Queue
	}
	if !rec.Answer.IsZero() && rec.End.After(rec.Answer) {
		r.CallDuration = int64(rec.End.Sub(rec.Answer).Round(time.Second) / time.Second)
	}
	return map[string]any{"engagementId": id, "objectRecord": r, "user": map[string]any{}}
}

// notConnectedMessage says why a call did not connect, from the record's
// disposition and the SIP status.
func notConnectedMessage(status int, reason string) string {
	var msg string
	switch reason {
	case "busy":
		msg = "Busy"
	case "no_answer":
		msg = "No answer"
	case "unavailable":
		msg = "Unavailable: the phone is not registered"
	case "cancelled":
		msg = "Cancelled"
	case "refused":
		msg = "Refused"
	case "rejected", "declined":
		msg = "Rejected"
	case "failed", "":
		msg = "Failed"
	default:
		msg = strings.ToUpper(reason[:1]) + strings.ReplaceAll(reason[1:], "_", " ")
	}
	if status > 0 {
		msg += fmt.Sprintf(" (SIP %d)", status)
	}
	return msg
}

// statusResponse is zcc-engagement-status-response for the user's live
// engagements (only id's when id is not empty). Outpost has no wrap-up:
// wrapup is always empty.
func statusResponse(requestID string, es []calls.Engagement, id string) Message {
	active := []map[string]any{}
	for _, e := range es {
		if id != "" && e.ID != id {
			continue
		}
		customer := e.To
		if e.Direction == "inbound" {
			customer = e.From
		}
		active = append(active, map[string]any{
			"engagementId": e.ID, "channel": "voice", "engagementDirection": e.Direction, "state": "active",
			"queueId": e.Queue, "queueName": e.Queue, "customerNumber": customer, "customerName": "", "customerEmail": "",
			"from": e.From, "to": e.To, "callState": e.State, "hold": e.Held, "mute": e.Muted,
		})
	}
	return Message{Type: MsgStatusResponse, Data: map[string]any{"requestId": requestID, "active": active, "wrapup": []any{}}}
}
