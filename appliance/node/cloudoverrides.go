package node

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/outpost-voice/outpost/appliance/web"
	"github.com/outpost-voice/outpost/cloudsync"
	"github.com/outpost-voice/outpost/cloudsync/protocol"
)

// nodeOverrides is the SDG overrides in force as the override reporter
// sees them: the replicated table, read on the leader.
type nodeOverrides struct{ n *Node }

func (o nodeOverrides) Overrides(ctx context.Context) ([]protocol.Override, error) {
	ovs, err := o.n.store.Reader().SDGOverrides(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]protocol.Override, len(ovs))
	for i, x := range ovs {
		route, err := json.Marshal(x.Route)
		if err != nil {
			return nil, fmt.Errorf("encode the route of the override of sdg %s: %w", x.SDGID, err)
		}
		out[i] = protocol.Override{SDGID: x.SDGID, Route: route, By: x.By, At: x.At, Revision: x.Revision}
	}
	return out, nil
}

// overridesReport is the status's view of what the reporter knows.
func overridesReport(st cloudsync.OverrideReportStatus) *web.OverridesReport {
	rep := &web.OverridesReport{Overrides: make([]web.ReportedOverride, len(st.Overrides)),
		Unsupported: st.Unsupported, LastError: st.LastError}
	if !st.ReportedAt.IsZero() {
		t := st.ReportedAt.UTC()
		rep.ReportedAt = &t
	}
	for i, o := range st.Overrides {
		rep.Overrides[i] = web.ReportedOverride{SDGID: o.SDGID, At: o.At, ReportedAt: o.ReportedAt.UTC()}
	}
	return rep
}
