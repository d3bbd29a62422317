package embed

import (
	"errors"
	"regexp"
	"strings"
	"testing"
)

var dialled = regexp.MustCompile(`^(\+[0-9]{1,31}|[0-9*#]{1,32})$`)

// DecodeAction never panics; what it accepts keeps embed-events.md's
// rules, and what it refuses names a field with a zcc-error code. The
// seeds are in testdata/fuzz/FuzzDecodeAction.
func FuzzDecodeAction(f *testing.F) {
	f.Add([]byte(`{"type":"onclicktoact","data":{"phone":"+1 (650) 555-0102","name":"Ann"}}`))
	f.Add([]byte(`{"type":"zcc-send-dtmf","data":{"engagementId":"e1","channelType":"voice","requestId":"r","digit":"#"}}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		a, err := DecodeAction(body)
		if err != nil {
			var p *Problem
			if !errors.As(err, &p) || (p.Code != CodeInvalidInput && p.Code != CodeNotSupported) || p.Field == "" ||
				!strings.HasPrefix(p.Message, p.Field+": ") {
				t.Fatalf("refusal %#v of %q", err, body)
			}
			return
		}
		if !isRequest(a.Type) {
			t.Fatalf("accepted type %q", a.Type)
		}
		if engagementRequests[a.Type] && (a.EngagementID == "" || a.RequestID == "" || len(a.EngagementID) > maxIDField) {
			t.Fatalf("accepted %q without its ids: %+v", body, a)
		}
		switch a.Type {
		case ReqSendDTMF:
			if !strings.ContainsRune("0123456789*#", rune(a.Digit)) || a.Digit == 0 {
				t.Fatalf("accepted digit %q", a.Digit)
			}
		case ReqClickToCall:
			if !dialled.MatchString(a.Phone) {
				t.Fatalf("accepted phone %q", a.Phone)
			}
		case ReqTransfer, ReqAddCall:
			if !dialled.MatchString(a.Destination) {
				t.Fatalf("accepted destination %q", a.Destination)
			}
		case ReqAgentStatusSet:
			if a.Status < 0 || a.Status > 2 {
				t.Fatalf("accepted status %d", a.Status)
			}
		case ReqStatus:
			if a.RequestID == "" {
				t.Fatalf("accepted a status request without requestId: %q", body)
			}
		}
	})
}
