package node

import (
	"encoding/json"
	"os"
	"testing"
	"time"

	"github.com/outpost-voice/outpost/account"
	"github.com/outpost-voice/outpost/appliance/cluster"
	"github.com/outpost-voice/outpost/appliance/store"
	"github.com/outpost-voice/outpost/cloudsync"
)

// The override reporter reads the overrides in force from the replicated
// table, each as GET /api/v1/sdgs/overrides shows it; the status shows
// what the reporter knows.
func TestNodeOverridesForTheReporter(t *testing.T) {
	n, ctx := startJournalNode(t)
	src := nodeOverrides{n}
	if got, err := src.Overrides(ctx); err != nil || len(got) != 0 {
		t.Fatalf("no configuration: %+v, %v; want none", got, err)
	}
	doc, err := os.ReadFile("../../../shared/contract/demo-snapshot.json")
	if err != nil {
		t.Fatal(err)
	}
	snap, err := account.DecodeBytes(doc)
	if err != nil {
		t.Fatal(err)
	}
	snap.Revision = 41
	doc, err = snap.Encode()
	if err != nil {
		t.Fatal(err)
	}
	if res, err := n.cluster.Apply(ctx, cluster.EncodeSnapshot(doc)); err != nil || res.Err != nil {
		t.Fatalf("apply the demo: %v, %v", err, res.Err)
	}
	at := time.Date(2026, 11, 23, 9, 0, 0, 123e6, time.UTC)
	o := store.SDGOverride{SDGID: "sdg-operator", Route: &account.Route{Type: account.RouteUser, ID: "u-bob"},
		By: "alice", At: at, Revision: 41}
	cmd, err := cluster.EncodeSDGOverride(o)
	if err != nil {
		t.Fatal(err)
	}
	if res, err := n.cluster.Apply(ctx, cmd); err != nil || res.Err != nil {
		t.Fatalf("set the override: %v, %v", err, res.Err)
	}
	got, err := src.Overrides(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0].SDGID != "sdg-operator" || got[0].By != "alice" || !got[0].At.Equal(at) ||
		got[0].Revision != 41 || string(got[0].Route) != `{"type":"user","id":"u-bob"}` {
		t.Errorf("overrides for the reporter: %+v (route %s)", got, got[0].Route)
	}
	// What GET /api/v1/sdgs/overrides shows is what is reported.
	api, _ := json.Marshal(o)
	var fromAPI, reported map[string]any
	_ = json.Unmarshal(api, &fromAPI)
	rep, _ := json.Marshal(got[0])
	_ = json.Unmarshal(rep, &reported)
	for k, v := range fromAPI {
		if b1, b2 := mustJSON(v), mustJSON(reported[k]); b1 != b2 {
			t.Errorf("%s: the API shows %s, the report has %s", k, b1, b2)
		}
	}

	reportedAt := at.Add(time.Minute)
	st := overridesReport(cloudsync.OverrideReportStatus{Key: "k", ReportedAt: reportedAt,
		Overrides: []cloudsync.ReportedOverride{{SDGID: "sdg-operator", At: at, ReportedAt: reportedAt}}})
	if st.ReportedAt == nil || !st.ReportedAt.Equal(reportedAt) || len(st.Overrides) != 1 ||
		st.Overrides[0].SDGID != "sdg-operator" || !st.Overrides[0].ReportedAt.Equal(reportedAt) {
		t.Errorf("status view %+v", st)
	}
	if st := overridesReport(cloudsync.OverrideReportStatus{LastError: "down"}); st.ReportedAt != nil ||
		st.Overrides == nil || st.LastError != "down" {
		t.Errorf("status view before a report: %+v", st)
	}
}

func mustJSON(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}
