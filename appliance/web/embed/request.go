package embed

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/outpost-voice/outpost/appliance/calls"
)

// The host's requests that the API acts on (embed-events.md, host →
// widget). The widget's script handles the other host messages itself
// (zcc-init-config-response, zcc-contact-search-response,
// zcc-incomingPhone-response).
const (
	ReqAccept           = "zcc-accept-engagement"
	ReqReject           = "zcc-reject-engagement"
	ReqTerminate        = "zcc-terminate-engagement"
	ReqSetMute          = "zcc-set-mute"
	ReqSetHold          = "zcc-set-hold"
	ReqSendDTMF         = "zcc-send-dtmf"
	ReqTransfer         = "zcc-transfer-engagement"
	ReqAddCall          = "zcc-add-call"
	ReqCancelConsult    = "zcc-cancel-consult"
	ReqCompleteTransfer = "zcc-complete-transfer"
	ReqMergeConsult     = "zcc-merge-consult"
	ReqStatus           = "zcc-engagement-status-request"
	ReqAgentStatusGet   = "zcc-agent-status-get-request"
	ReqAgentStatusSet   = "zcc-agent-status-set-request"
	ReqClickToCall      = "onclicktoact"
)

// engagementRequests act on one engagement: each needs engagementId,
// channelType "voice" and requestId.
var engagementRequests = map[string]bool{
	ReqAccept: true, ReqReject: true, ReqTerminate: true, ReqSetMute: true, ReqSetHold: true,
	ReqSendDTMF: true, ReqTransfer: true, ReqAddCall: true, ReqCancelConsult: true,
	ReqCompleteTransfer: true, ReqMergeConsult: true,
}

// Error codes of zcc-error.
const (
	CodeInvalidInput = "invalid-input" // the request is wrong (embed-events.md)
	CodeNotSupported = "not-supported" // not a request Outpost handles, or not for this call
	CodeCallFailed   = "call-failed"   // the call engine could not do it
)

// Limits of a request's fields.
const (
	maxActionBody = 16 << 10
	maxIDField    = 128 // engagementId, requestId, consultParticipantId
	maxDial       = 32  // a phone number or extension, once normalised
	maxTextField  = 256 // the contact's id, name, email, entity
)

// Action is one validated host request.
type Action struct {
	Type         string
	EngagementID string // engagement requests; optional for ReqStatus
	RequestID    string // engagement requests and ReqStatus
	On           bool   // ReqSetMute, ReqSetHold
	Digit        byte   // ReqSendDTMF: one of 0-9 * #
	Destination  string // ReqTransfer, ReqAddCall (normalised)
	Warm         bool   // ReqTransfer, ReqAddCall: "warm" (consult first)
	Status       int    // ReqAgentStatusSet: calls.AgentOffline, Ready or NotReady
	Phone        string // ReqClickToCall (normalised)
}

// Problem is a request refused before anything was done: zcc-error's
// code, and a message that starts with the field at fault.
type Problem struct {
	Code    string
	Field   string
	Message string
}

func (p *Problem) Error() string { return p.Message }

func invalid(field, format string, args ...any) *Problem {
	return &Problem{Code: CodeInvalidInput, Field: field, Message: field + ": " + fmt.Sprintf(format, args...)}
}

// ActionRequest is POST /embed/api/action's body: a host message as the
// widget received it.
type ActionRequest struct {
	Type string          `json:"type"`
	Data json.RawMessage `json:"data,omitempty"`
}

// DecodeAction decodes and validates one host request, exactly as
// embed-events.md says: a missing or wrong field is a Problem with code
// invalid-input naming it; a type the API does not act on is a Problem
// with code not-supported. Unknown fields inside data are ignored (hosts
// send more than the widget reads); the engagement's existence is the
// caller's to check.
func DecodeAction(body []byte) (Action, error) {
	var req ActionRequest
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		return Action{}, invalid("body", "not a message {type, data}: %v", err)
	}
	if dec.More() {
		return Action{}, invalid("body", "data after the message")
	}
	if req.Type == "" {
		return Action{}, invalid("type", "required: the message's type, e.g. onclicktoact")
	}
	if !isRequest(req.Type) {
		return Action{}, &Problem{Code: CodeNotSupported, Field: "type",
			Message: fmt.Sprintf("type: %q is not a request Outpost's widget handles", truncate(req.Type, 64))}
	}
	f, perr := fieldsOf(req.Data)
	if perr != nil {
		return Action{}, perr
	}
	a := Action{Type: req.Type}
	var err *Problem
	switch {
	case engagementRequests[req.Type]:
		err = a.decodeEngagement(f)
	case req.Type == ReqStatus:
		if a.RequestID, err = f.text("requestId", true, maxIDField); err != nil {
			break
		}
		if err = f.voice(false); err != nil {
			break
		}
		a.EngagementID, err = f.text("engagementId", false, maxIDField)
	case req.Type == ReqAgentStatusGet:
	case req.Type == ReqAgentStatusSet:
		a.Status, err = f.agentStatus("id")
	case req.Type == ReqClickToCall:
		if a.Phone, err = f.dial("phone"); err != nil {
			break
		}
		for _, k := range []string{"name", "email", "userEntity"} {
			if _, err = f.text(k, false, maxTextField); err != nil {
				break
			}
		}
		if err == nil {
			err = f.contactID("id")
		}
	}
	if err != nil {
		return Action{}, err
	}
	return a, nil
}

func isRequest(t string) bool {
	switch t {
	case ReqStatus, ReqAgentStatusGet, ReqAgentStatusSet, ReqClickToCall:
		return true
	}
	return engagementRequests[t]
}

// decodeEngagement reads the fields of a request on one engagement.
func (a *Action) decodeEngagement(f fields) *Problem {
	var err *Problem
	if a.EngagementID, err = f.text("engagementId", true, maxIDField); err != nil {
		return err
	}
	if err = f.voice(true); err != nil {
		return err
	}
	if a.RequestID, err = f.text("requestId", true, maxIDField); err != nil {
		return err
	}
	switch a.Type {
	case ReqSetMute:
		a.On, err = f.boolean("mute")
	case ReqSetHold:
		a.On, err = f.boolean("hold")
	case ReqSendDTMF:
		a.Digit, err = f.digit("digit")
	case ReqTransfer, ReqAddCall:
		if a.Warm, err = f.transferType(a.Type == ReqTransfer); err != nil {
			return err
		}
		a.Destination, err = f.dial("destination")
	case ReqCancelConsult, ReqCompleteTransfer, ReqMergeConsult:
		if _, err = f.text("consultParticipantId", false, maxIDField); err != nil {
			return err
		}
		_, err = f.text("reason", false, maxTextField)
	}
	return err
}

// fields are a request's data, by name.
type fields map[string]json.RawMessage

func fieldsOf(data json.RawMessage) (fields, *Problem) {
	f := fields{}
	d := bytes.TrimSpace(data)
	if len(d) == 0 || string(d) == "null" {
		return f, nil
	}
	if d[0] != '{' {
		return nil, invalid("data", "must be an object")
	}
	if err := json.Unmarshal(d, &f); err != nil {
		return nil, invalid("data", "must be an object: %v", err)
	}
	return f, nil
}

// present reports whether name is given (null counts as absent).
func (f fields) present(name string) bool {
	v, ok := f[name]
	return ok && string(bytes.TrimSpace(v)) != "null"
}

// text is a string field of at most max bytes of printable UTF-8.
func (f fields) text(name string, required bool, max int) (string, *Problem) {
	if !f.present(name) {
		if required {
			return "", invalid(name, "required")
		}
		return "", nil
	}
	var s string
	if err := json.Unmarshal(f[name], &s); err != nil {
		return "", invalid(name, "must be a string")
	}
	switch {
	case s == "" && required:
		return "", invalid(name, "required, and empty")
	case len(s) > max:
		return "", invalid(name, "at most %d characters", max)
	case !utf8.ValidString(s) || strings.ContainsFunc(s, func(r rune) bool { return r < ' ' || r == 0x7f }):
		return "", invalid(name, "must not contain control characters")
	}
	return s, nil
}

// voice checks channelType: Outpost's widget has voice only.
func (f fields) voice(required bool) *Problem {
	ch, err := f.text("channelType", required, 32)
	if err != nil {
		return err
	}
	if f.present("channelType") && ch != "voice" {
		return invalid("channelType", "%q is not supported: Outpost's widget handles \"voice\" only", ch)
	}
	return nil
}

func (f fields) boolean(name string) (bool, *Problem) {
	if !f.present(name) {
		return false, invalid(name, "required: true or false")
	}
	var b bool
	if err := json.Unmarshal(f[name], &b); err != nil {
		return false, invalid(name, "must be true or false")
	}
	return b, nil
}

// digit is one DTMF key: one character of 0-9 * #.
func (f fields) digit(name string) (byte, *Problem) {
	s, err := f.text(name, true, 8)
	if err != nil {
		return 0, err
	}
	if len(s) != 1 || !strings.Contains("0123456789*#", s) {
		return 0, invalid(name, "must be one character of 0-9, * or #; got %q", s)
	}
	return s[0], nil
}

// transferType is "direct" or "warm"; required for a transfer, "warm"
// by default for zcc-add-call.
func (f fields) transferType(required bool) (warm bool, _ *Problem) {
	t, err := f.text("transferType", required, 16)
	if err != nil {
		if required {
			err.Message = "transferType: required: \"direct\" or \"warm\""
		}
		return false, err
	}
	switch t {
	case "", "warm":
		return true, nil
	case "direct":
		return false, nil
	}
	return false, invalid("transferType", "must be \"direct\" or \"warm\"; got %q", t)
}

// dial is a number or extension to call: digits, optionally after a +,
// and * or #; spaces, dots, dashes and brackets are dropped.
func (f fields) dial(name string) (string, *Problem) {
	s, err := f.text(name, true, maxTextField)
	if err != nil {
		return "", err
	}
	n := NormaliseDial(s)
	if n == "" {
		return "", invalid(name, "%q is not a number or extension to dial: use digits, optionally after +", truncate(s, 40))
	}
	return n, nil
}

// NormaliseDial is s as the call engine dials it ("+1 (650) 555-0101" is
// "+16505550101"), or "" when s is not a number or extension.
func NormaliseDial(s string) string {
	var b strings.Builder
	for i, r := range strings.TrimSpace(s) {
		switch {
		case r >= '0' && r <= '9', r == '*', r == '#':
			b.WriteRune(r)
		case r == '+' && i == 0:
			b.WriteRune(r)
		case r == ' ' || r == '-' || r == '.' || r == '(' || r == ')':
		default:
			return ""
		}
	}
	n := b.String()
	if n == "" || n == "+" || len(n) > maxDial || (n[0] == '+' && strings.ContainsAny(n, "*#")) {
		return ""
	}
	return n
}

// agentStatus is a status the user may set: 0 Offline, 1 Ready, 2 Not
// Ready (3 Occupied follows calls). A number, or a string of one.
func (f fields) agentStatus(name string) (int, *Problem) {
	if !f.present(name) {
		return 0, invalid(name, "required: the status code, 0 (Offline), 1 (Ready) or 2 (Not Ready)")
	}
	raw := bytes.TrimSpace(f[name])
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		s = string(raw)
	}
	n, err := strconv.Atoi(s)
	if err != nil || (n != calls.AgentOffline && n != calls.AgentReady && n != calls.AgentNotReady) {
		return 0, invalid(name, "must be 0 (Offline), 1 (Ready) or 2 (Not Ready); got %s", truncate(string(raw), 20))
	}
	return n, nil
}

// contactID is the host's id of a contact: a string or a number.
func (f fields) contactID(name string) *Problem {
	if !f.present(name) {
		return nil
	}
	var n json.Number
	if json.Unmarshal(f[name], &n) == nil {
		return nil
	}
	_, err := f.text(name, false, maxTextField)
	if err != nil {
		err.Message = name + ": must be a string or a number of at most 256 characters"
	}
	return err
}
