package cloudsync

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// modeEvent is one input to the machine: a probe at a second offset ("up"
// or "down"), or "done" (RecoveryDone); then the mode expected after it
// and whether it changed.
type modeEvent struct {
	in      string // "up@S", "down@S" or "done"
	want    Mode
	changed bool
}

func TestModeMachineTransitions(t *testing.T) {
	const (
		N = ModeNormal
		S = ModeSurvivability
		R = ModeRecovering
	)
	// outage_after 30 s, recover_after 20 s throughout.
	tests := []struct {
		name   string
		start  Mode
		events []modeEvent
	}{
		{"normal stays normal while reachable", N, []modeEvent{
			{"up@0", N, false}, {"up@5", N, false}, {"up@1000", N, false}}},
		{"normal to survivability after outage_after unreachable", N, []modeEvent{
			{"down@0", N, false}, {"down@5", N, false}, {"down@29", N, false}, {"down@30", S, true}}},
		{"a single reachable probe restarts the outage clock", N, []modeEvent{
			{"down@0", N, false}, {"down@25", N, false}, {"up@26", N, false},
			{"down@27", N, false}, {"down@56", N, false}, {"down@57", S, true}}},
		{"a gap in probes still counts from the streak's first probe", N, []modeEvent{
			{"down@0", N, false}, {"down@100", S, true}}},
		{"survivability stays while unreachable", S, []modeEvent{
			{"down@0", S, false}, {"down@500", S, false}}},
		{"survivability to recovering after recover_after reachable", S, []modeEvent{
			{"up@0", S, false}, {"up@19", S, false}, {"up@20", R, true}}},
		{"an unreachable probe restarts the recover clock", S, []modeEvent{
			{"up@0", S, false}, {"up@15", S, false}, {"down@16", S, false},
			{"up@17", S, false}, {"up@36", S, false}, {"up@37", R, true}}},
		{"RecoveryDone is the only way out of recovering to normal", R, []modeEvent{
			{"up@0", R, false}, {"up@1000", R, false}, {"done", N, true}, {"up@1005", N, false}}},
		{"recovering back to survivability after outage_after unreachable", R, []modeEvent{
			{"down@0", R, false}, {"down@29", R, false}, {"down@30", S, true}}},
		{"recovering: a reachable probe restarts the outage clock", R, []modeEvent{
			{"down@0", R, false}, {"up@20", R, false}, {"down@21", R, false}, {"down@50", R, false}, {"down@51", S, true}}},
		{"RecoveryDone outside recovering changes nothing", N, []modeEvent{
			{"done", N, false}, {"down@0", N, false}, {"down@30", S, true}, {"done", S, false}}},
		{"streaks start over in each mode", N, []modeEvent{
			{"down@0", N, false}, {"down@30", S, true},
			// the reachable streak begins at the first reachable probe in survivability
			{"up@31", S, false}, {"up@50", S, false}, {"up@51", R, true},
			// the outage clock in recovering begins at its first unreachable probe
			{"down@52", R, false}, {"down@81", R, false}, {"down@82", S, true},
			{"up@83", S, false}, {"up@103", R, true}, {"done", N, true}}},
		{"a full outage and recovery", N, []modeEvent{
			{"up@0", N, false}, {"down@5", N, false}, {"down@35", S, true}, {"down@40", S, false},
			{"up@45", S, false}, {"up@65", R, true}, {"up@70", R, false}, {"done", N, true}}},
		{"a clock that goes back restarts the streak", N, []modeEvent{
			{"down@100", N, false}, {"down@50", N, false}, {"down@79", N, false}, {"down@80", S, true}}},
		{"an unset replicated mode starts normal", "", []modeEvent{
			{"down@0", N, false}, {"down@30", S, true}}},
	}
	epoch := time.Date(2026, 11, 23, 1, 0, 0, 0, time.UTC)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := NewModeMachine(tt.start, 30*time.Second, 20*time.Second)
			for i, ev := range tt.events {
				var got Mode
				var changed bool
				if ev.in == "done" {
					got, changed = m.RecoveryDone()
				} else {
					kind, at, ok := strings.Cut(ev.in, "@")
					var secs int
					if _, err := fmt.Sscan(at, &secs); !ok || err != nil || (kind != "up" && kind != "down") {
						t.Fatalf("bad event %q", ev.in)
					}
					got, changed = m.Observe(kind == "up", epoch.Add(time.Duration(secs)*time.Second))
				}
				if got != ev.want || changed != ev.changed {
					t.Fatalf("event %d (%s): got %s changed=%v, want %s changed=%v", i, ev.in, got, changed, ev.want, ev.changed)
				}
				if m.Mode() != got {
					t.Fatalf("event %d: Mode() = %s, Observe said %s", i, m.Mode(), got)
				}
			}
		})
	}
}

func TestModeMachineZeroDurations(t *testing.T) {
	at := time.Unix(0, 0)
	m := NewModeMachine(ModeNormal, 0, 0)
	if got, changed := m.Observe(false, at); got != ModeSurvivability || !changed {
		t.Fatalf("outage_after 0: one failed probe gives %s changed=%v, want survivability", got, changed)
	}
	if got, changed := m.Observe(true, at); got != ModeRecovering || !changed {
		t.Fatalf("recover_after 0: one good probe gives %s changed=%v, want recovering", got, changed)
	}
}

func TestParseMode(t *testing.T) {
	for in, want := range map[string]Mode{"": ModeNormal, "normal": ModeNormal, "survivability": ModeSurvivability, "recovering": ModeRecovering} {
		if got, err := ParseMode(in); err != nil || got != want {
			t.Errorf("ParseMode(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	if _, err := ParseMode("outage"); err == nil || !strings.Contains(err.Error(), `"outage"`) {
		t.Errorf("ParseMode(outage) = %v, want an error naming it", err)
	}
}
