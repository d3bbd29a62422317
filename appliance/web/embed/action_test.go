package embed

import (
	"errors"
	"fmt"
	"net/http"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/outpost-voice/outpost/appliance/calls"
)

// actionFixture: alice signed in, with one connected call e1.
func actionFixture(t *testing.T) (*fixture, string) {
	f := newFixture(t, nil)
	f.backend.engagements["alice"] = []calls.Engagement{{ID: "e1", Direction: "inbound", From: "+14155550100", To: "1001",
		Queue: "Front Desk", State: calls.EngConnected, Created: f.clock.Now().Add(-time.Minute)}}
	f.backend.engagements["bob"] = []calls.Engagement{{ID: "e-bob", Direction: "outbound", From: "bob", To: "1003", State: calls.EngConnected}}
	return f, f.signIn("alice")
}

const e1 = `"engagementId":"e1","channelType":"voice","requestId":"9b7f2c1a-3e4d-4f8a-9b2c-5d6e7f8a9b0c"`

// Every validation rule of embed-events.md: 400, zcc-error invalid-input,
// a message naming the field; nothing reaches the call.
func TestActionValidation(t *testing.T) {
	f, tok := actionFixture(t)
	for _, tc := range []struct{ body, field string }{
		{`{"type":"zcc-accept-engagement","data":{"channelType":"voice","requestId":"r1"}}`, "engagementId"},
		{`{"type":"zcc-accept-engagement","data":{"engagementId":"","channelType":"voice","requestId":"r1"}}`, "engagementId"},
		{`{"type":"zcc-accept-engagement","data":{"engagementId":"e-nope","channelType":"voice","requestId":"r1"}}`, "engagementId"},
		{`{"type":"zcc-terminate-engagement","data":{"engagementId":"e-bob","channelType":"voice","requestId":"r1"}}`, "engagementId"},
		{`{"type":"zcc-accept-engagement","data":{"engagementId":42,"channelType":"voice","requestId":"r1"}}`, "engagementId"},
		{`{"type":"zcc-reject-engagement","data":{"engagementId":"e1","requestId":"r1"}}`, "channelType"},
		{`{"type":"zcc-reject-engagement","data":{"engagementId":"e1","channelType":"chat","requestId":"r1"}}`, "channelType"},
		{`{"type":"zcc-reject-engagement","data":{"engagementId":"e1","channelType":"VOICE","requestId":"r1"}}`, "channelType"},
		{`{"type":"zcc-terminate-engagement","data":{"engagementId":"e1","channelType":"voice"}}`, "requestId"},
		{`{"type":"zcc-terminate-engagement","data":{"engagementId":"e1","channelType":"voice","requestId":""}}`, "requestId"},
		{`{"type":"zcc-set-mute","data":{` + e1 + `}}`, "mute"},
		{`{"type":"zcc-set-mute","data":{` + e1 + `,"mute":"yes"}}`, "mute"},
		{`{"type":"zcc-set-hold","data":{` + e1 + `,"hold":1}}`, "hold"},
		{`{"type":"zcc-send-dtmf","data":{` + e1 + `}}`, "digit"},
		{`{"type":"zcc-send-dtmf","data":{` + e1 + `,"digit":"12"}}`, "digit"},
		{`{"type":"zcc-send-dtmf","data":{` + e1 + `,"digit":"A"}}`, "digit"},
		{`{"type":"zcc-send-dtmf","data":{` + e1 + `,"digit":""}}`, "digit"},
		{`{"type":"zcc-send-dtmf","data":{` + e1 + `,"digit":5}}`, "digit"},
		{`{"type":"zcc-transfer-engagement","data":{` + e1 + `,"destination":"1003"}}`, "transferType"},
		{`{"type":"zcc-transfer-engagement","data":{` + e1 + `,"transferType":"cold","destination":"1003"}}`, "transferType"},
		{`{"type":"zcc-transfer-engagement","data":{` + e1 + `,"transferType":"direct"}}`, "destination"},
		{`{"type":"zcc-add-call","data":{` + e1 + `,"destination":"sip:x@evil"}}`, "destination"},
		{`{"type":"zcc-engagement-status-request","data":{}}`, "requestId"},
		{`{"type":"zcc-engagement-status-request","data":{"requestId":"r1","engagementId":"e-nope"}}`, "engagementId"},
		{`{"type":"zcc-engagement-status-request","data":{"requestId":"r1","channelType":"sms"}}`, "channelType"},
		{`{"type":"zcc-agent-status-set-request","data":{}}`, "id"},
		{`{"type":"zcc-agent-status-set-request","data":{"id":3}}`, "id"},
		{`{"type":"zcc-agent-status-set-request","data":{"id":"ready"}}`, "id"},
		{`{"type":"onclicktoact","data":{}}`, "phone"},
		{`{"type":"onclicktoact","data":{"phone":""}}`, "phone"},
		{`{"type":"onclicktoact","data":{"phone":"call me"}}`, "phone"},
		{`{"type":"onclicktoact","data":{"phone":"+1*23"}}`, "phone"},
		{`{"type":"onclicktoact","data":{"phone":"1002","name":{"x":1}}}`, "name"},
		{`{"type":"onclicktoact","data":{"phone":"1002","id":[1]}}`, "id"},
		{`{"type":"onclicktoact","data":"1002"}`, "data"},
		{`{"type":"","data":{}}`, "type"},
		{`{"data":{}}`, "type"},
		{`{"type":"onclicktoact","data":{"phone":"1002"},"extra":1}`, "body"},
		{`not json`, "body"},
	} {
		code, res := f.act(tok, tc.body)
		if code != http.StatusBadRequest || res.OK || res.Code != CodeInvalidInput || res.Field != tc.field || !strings.HasPrefix(res.Error, tc.field+": ") {
			t.Errorf("%s: %d %+v; want 400 invalid-input naming %s", tc.body, code, res, tc.field)
			continue
		}
		want := Message{Type: MsgError, Data: map[string]any{"code": CodeInvalidInput, "message": res.Error}}
		if len(res.Messages) != 1 || !reflect.DeepEqual(res.Messages[0], want) {
			t.Errorf("%s: messages %+v, want %+v", tc.body, res.Messages, want)
		}
	}
	if got := f.backend.recorded(); len(got) != 0 {
		t.Errorf("refused requests reached the call: %+v", got)
	}
	// A type the widget does not act on.
	code, res := f.act(tok, `{"type":"zcc-set-recording","data":{`+e1+`,"action":"pause"}}`)
	if code != http.StatusBadRequest || res.Code != CodeNotSupported || res.Field != "type" || len(res.Messages) != 1 {
		t.Errorf("an unsupported type: %d %+v", code, res)
	}
}

// Each request reaches the backend as the call it names.
func TestActionsReachTheCalls(t *testing.T) {
	for _, tc := range []struct {
		body string
		want backendCall
		eng  string // the response's engagementId
	}{
		{`{"type":"zcc-accept-engagement","data":{` + e1 + `}}`, backendCall{Method: "Accept", ID: "e1"}, ""},
		{`{"type":"zcc-reject-engagement","data":{` + e1 + `}}`, backendCall{Method: "Reject", ID: "e1"}, ""},
		{`{"type":"zcc-terminate-engagement","data":{` + e1 + `}}`, backendCall{Method: "Hangup", ID: "e1"}, ""},
		{`{"type":"zcc-set-mute","data":{` + e1 + `,"mute":true}}`, backendCall{Method: "Mute", ID: "e1", On: true}, ""},
		{`{"type":"zcc-set-mute","data":{` + e1 + `,"mute":false}}`, backendCall{Method: "Mute", ID: "e1"}, ""},
		{`{"type":"zcc-set-hold","data":{` + e1 + `,"hold":true}}`, backendCall{Method: "Hold", ID: "e1", On: true}, ""},
		{`{"type":"zcc-send-dtmf","data":{` + e1 + `,"digit":"#"}}`, backendCall{Method: "SendDTMF", ID: "e1", Digit: '#'}, ""},
		{`{"type":"zcc-send-dtmf","data":{` + e1 + `,"digit":"7"}}`, backendCall{Method: "SendDTMF", ID: "e1", Digit: '7'}, ""},
		{`{"type":"zcc-transfer-engagement","data":{` + e1 + `,"transferType":"direct","destination":"1003"}}`, backendCall{Method: "Transfer", ID: "e1", Dest: "1003"}, ""},
		{`{"type":"zcc-transfer-engagement","data":{` + e1 + `,"transferType":"warm","destination":"+1 (650) 555-0103"}}`, backendCall{Method: "Transfer", ID: "e1", Dest: "+16505550103", Warm: true}, ""},
		{`{"type":"zcc-add-call","data":{` + e1 + `,"destination":"1003"}}`, backendCall{Method: "AddCall", ID: "e1", Dest: "1003"}, "e-consult"},
		{`{"type":"zcc-cancel-consult","data":{` + e1 + `,"consultParticipantId":"p1","reason":"busy"}}`, backendCall{Method: "CancelConsult", ID: "e1"}, ""},
		{`{"type":"zcc-complete-transfer","data":{` + e1 + `}}`, backendCall{Method: "CompleteTransfer", ID: "e1"}, ""},
		{`{"type":"zcc-merge-consult","data":{` + e1 + `}}`, backendCall{Method: "MergeConsult", ID: "e1"}, ""},
		{`{"type":"zcc-agent-status-set-request","data":{"id":2}}`, backendCall{Method: "SetAgentStatus", Status: 2}, ""},
		{`{"type":"zcc-agent-status-set-request","data":{"id":"0"}}`, backendCall{Method: "SetAgentStatus", Status: 0}, ""},
		{`{"type":"onclicktoact","data":{"phone":"1002"}}`, backendCall{Method: "ClickToCall", Dest: "1002"}, "e-new"},
		{`{"type":"onclicktoact","data":{"id":17,"name":"Ann","phone":"+1 650-555-0102","email":"a@x","userEntity":"contact"}}`, backendCall{Method: "ClickToCall", Dest: "+16505550102"}, "e-new"},
	} {
		f, tok := actionFixture(t)
		code, res := f.act(tok, tc.body)
		tc.want.User = "alice"
		got := f.backend.recorded()
		if code != http.StatusOK || !res.OK || res.EngagementID != tc.eng || len(got) != 1 || got[0] != tc.want {
			t.Errorf("%s: %d %+v, backend %+v; want %+v", tc.body, code, res, got, tc.want)
		}
	}
}

// Requests answered with a message: the engagement status and the agent
// status.
func TestActionsAnsweredWithMessages(t *testing.T) {
	f, tok := actionFixture(t)
	code, res := f.act(tok, `{"type":"zcc-engagement-status-request","data":{"requestId":"r-7"}}`)
	if code != http.StatusOK || len(res.Messages) != 1 || res.Messages[0].Type != MsgStatusResponse {
		t.Fatalf("%d %+v", code, res)
	}
	d := res.Messages[0].Data.(map[string]any)
	active := d["active"].([]any)
	if d["requestId"] != "r-7" || len(active) != 1 || len(d["wrapup"].([]any)) != 0 {
		t.Fatalf("status response %+v", d)
	}
	a := active[0].(map[string]any)
	for k, want := range map[string]any{"engagementId": "e1", "channel": "voice", "engagementDirection": "inbound", "state": "active",
		"queueName": "Front Desk", "customerNumber": "+14155550100", "from": "+14155550100", "to": "1001"} {
		if a[k] != want {
			t.Errorf("active[0].%s = %v, want %v", k, a[k], want)
		}
	}
	code, res = f.act(tok, `{"type":"zcc-engagement-status-request","data":{"requestId":"r-8","engagementId":"e1","channelType":"voice"}}`)
	if code != http.StatusOK || len(res.Messages[0].Data.(map[string]any)["active"].([]any)) != 1 {
		t.Errorf("status of e1: %d %+v", code, res)
	}
	f.backend.agent["alice"] = calls.AgentNotReady
	code, res = f.act(tok, `{"type":"zcc-agent-status-get-request"}`)
	want := Message{Type: MsgAgentStatus, Data: map[string]any{"statusCode": float64(2), "status": "Not Ready"}}
	if code != http.StatusOK || len(res.Messages) != 1 || !reflect.DeepEqual(res.Messages[0], want) {
		t.Errorf("agent status: %d %+v, want %+v", code, res.Messages, want)
	}
}

// The backend's refusals: no engagement is invalid-input naming
// engagementId; not supported is not-supported; anything else says the
// call failed.
func TestActionBackendErrors(t *testing.T) {
	for _, tc := range []struct {
		err    error
		status int
		code   string
		field  string
	}{
		{fmt.Errorf("hold e1: %w", calls.ErrNoEngagement), http.StatusBadRequest, CodeInvalidInput, "engagementId"},
		{calls.ErrNotSupported, http.StatusConflict, CodeNotSupported, ""},
		{errors.New("alice's phone is not registered"), http.StatusBadGateway, CodeCallFailed, ""},
	} {
		f, tok := actionFixture(t)
		f.backend.err = tc.err
		for _, body := range []string{`{"type":"zcc-set-hold","data":{` + e1 + `,"hold":true}}`, `{"type":"onclicktoact","data":{"phone":"1002"}}`} {
			code, res := f.act(tok, body)
			if code != tc.status || res.OK || res.Code != tc.code || res.Field != tc.field || len(res.Messages) != 1 ||
				res.Messages[0].Type != MsgError || res.Messages[0].Data.(map[string]any)["code"] != tc.code {
				t.Errorf("%v on %s: %d %+v; want %d %s", tc.err, body, code, res, tc.status, tc.code)
			}
		}
	}
}

// Without a call engine the API says so (503), and the page still loads.
func TestNoCallEngine(t *testing.T) {
	f := newFixture(t, func(d *Deps) { d.Calls = nil })
	tok := f.signIn("alice")
	if code, res := f.act(tok, `{"type":"onclicktoact","data":{"phone":"1002"}}`); code != http.StatusServiceUnavailable || res.Code != CodeNotSupported {
		t.Errorf("action: %d %+v", code, res)
	}
	if rec := f.do("GET", "/embed/api/events", "", "192.0.2.1", "Authorization", "Bearer "+tok); rec.Code != http.StatusServiceUnavailable {
		t.Errorf("events: %d", rec.Code)
	}
}

func TestNormaliseDial(t *testing.T) {
	for in, want := range map[string]string{
		"1002": "1002", "+1 (650) 555-0101": "+16505550101", " 555.0101 ": "5550101", "*72": "*72", "#": "#",
		"": "", "+": "", "abc": "", "1+2": "", "+1*2": "", "sip:bob@x": "", "1002;user=phone": "",
		strings.Repeat("1", 33): "",
	} {
		if got := NormaliseDial(in); got != want {
			t.Errorf("NormaliseDial(%q) = %q, want %q", in, got, want)
		}
	}
}

// A destination the call engine cannot dial is the request's fault.
func TestActionBadDestination(t *testing.T) {
	f, tok := actionFixture(t)
	f.backend.err = calls.ErrBadDestination
	for body, field := range map[string]string{
		`{"type":"onclicktoact","data":{"phone":"1002"}}`:                                                     "phone",
		`{"type":"zcc-transfer-engagement","data":{` + e1 + `,"transferType":"direct","destination":"1003"}}`: "destination",
	} {
		code, res := f.act(tok, body)
		if code != http.StatusBadRequest || res.Code != CodeInvalidInput || res.Field != field || !strings.HasPrefix(res.Error, field+": ") {
			t.Errorf("%s: %d %+v; want 400 invalid-input naming %s", body, code, res, field)
		}
	}
}
