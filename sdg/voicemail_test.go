package sdg

import (
	"testing"

	"github.com/outpost-voice/outpost/account"
)

func voicemailRoute(id string) *account.Route {
	return &account.Route{Type: account.RouteVoicemail, ID: id}
}

// A voicemail route sends the caller to its mailbox (a user's or an
// SDG's): reaching it connects the call, a mailbox that cannot take it
// fails the walk with ErrNoVoicemail, a hang-up fails it as any other.
func TestWalkVoicemail(t *testing.T) {
	runWalks(t, []walkCase{
		{name: "a group's no answer", setup: func(f *fixture) {
			f.dir.sdgs["front"].Route.NoAnswer = voicemailRoute("front")
		}, root: sdgRoute("front"), replies: []string{"noanswer", "answer"},
			want:     []string{`ring u-alice,u-bob 20s "Front Desk"`, "voicemail front", "connected voicemail front"},
			wantPath: []string{"sdg:front", "group:simultaneous no_answer", "voicemail:front"}},
		{name: "an ivr option", setup: func(f *fixture) {
			f.dir.sdgs["menu"].Route.Options["5"] = voicemailRoute("u-alice")
		}, root: numberRoute("+16505550100"), replies: []string{"digit 5", "answer"},
			want:     []string{"menu main-menu 1/3 8s", "voicemail u-alice", "connected voicemail u-alice"},
			wantPath: []string{"number:+16505550100", "sdg:menu", "ivr:main-menu option 5", "voicemail:u-alice"}},
		{name: "the mailbox cannot take it", root: voicemailRoute("u-alice"), replies: []string{"noanswer 503"},
			want: []string{"voicemail u-alice", "fail 503"}, wantErr: ErrNoVoicemail},
		{name: "hung up", root: voicemailRoute("u-alice"), replies: []string{"hangup"},
			want: []string{"voicemail u-alice", "fail 487"}, wantErr: ErrHangup},
		{name: "no id", root: &account.Route{Type: account.RouteVoicemail},
			want: []string{"fail 500"}, wantErr: ErrBadRoute},
		{name: "stale and unrelated events wait", root: voicemailRoute("u-alice"),
			replies: []string{"stale", "digit 1", "timeout", "answer"},
			want:    []string{"voicemail u-alice", "wait", "wait", "wait", "connected voicemail u-alice"}},
	})
}
