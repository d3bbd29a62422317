package mwi

import (
	"fmt"
	"strings"
)

// ContentType is the body type of a message-summary NOTIFY.
const ContentType = "application/simple-message-summary"

// Event is the event package this node serves.
const Event = "message-summary"

// Summary is a mailbox's message-waiting state as a phone sees it.
type Summary struct {
	Account string // sip:<username>@<realm>, the mailbox's account
	New     int    // new (unheard) messages
	Old     int    // saved (heard) messages
}

// Body is the RFC 3842 body: the status line, the account, and the voice
// message counts (no urgent messages: "(0/0)").
func (s Summary) Body() []byte {
	waiting := "no"
	if s.New > 0 {
		waiting = "yes"
	}
	var b strings.Builder
	fmt.Fprintf(&b, "Messages-Waiting: %s\r\n", waiting)
	if s.Account != "" {
		fmt.Fprintf(&b, "Message-Account: %s\r\n", s.Account)
	}
	fmt.Fprintf(&b, "Voice-Message: %d/%d (0/0)\r\n", max(s.New, 0), max(s.Old, 0))
	return []byte(b.String())
}

// Empty reports whether the mailbox holds no message.
func (s Summary) Empty() bool { return s.New <= 0 && s.Old <= 0 }

// messageAccount is the Message-Account of username at realm.
func messageAccount(username, realm string) string { return "sip:" + username + "@" + realm }
