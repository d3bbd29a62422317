package web

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/outpost-voice/outpost/account"
	"github.com/outpost-voice/outpost/appliance/cluster"
	"github.com/outpost-voice/outpost/appliance/store"
)

// OverrideByHeader names who makes an SDG override through the API (an
// admin's username; the UI sends the signed-in admin's). Without it the
// override is recorded as made by "api".
const OverrideByHeader = "X-Outpost-By"

// OverrideResponse answers a set or cleared SDG override: the override in
// force after the request (null once cleared).
type OverrideResponse struct {
	SDGID    string             `json:"sdg_id"`
	Override *store.SDGOverride `json:"override"`
}

// OverridesReport is what the cloud holds of the SDG overrides, as the
// node leading the cloud sync knows it: in its memory only (reports are
// not replicated), so a new leader knows nothing until the cloud takes
// its first report, which it sends at once. Status shows it under
// cloud.overrides_report.
type OverridesReport struct {
	// ReportedAt is when the cloud took the last report; null before the
	// first.
	ReportedAt *time.Time `json:"reported_at"`
	// Overrides are that report's, each with when the cloud first had it.
	Overrides []ReportedOverride `json:"overrides"`
	// Unsupported: the cloud does not take override reports.
	Unsupported bool   `json:"unsupported,omitempty"`
	LastError   string `json:"last_error,omitempty"`
}

// ReportedOverride is an override the cloud holds: the override of SDGID
// made at At, first reported at ReportedAt.
type ReportedOverride struct {
	SDGID      string    `json:"sdg_id"`
	At         time.Time `json:"at"`
	ReportedAt time.Time `json:"reported_at"`
}

// OverrideItem is an override in force as GET /api/v1/sdgs/overrides
// lists it: ReportedAt is when the cloud got it, null while it has not
// (or while the node leading the cloud sync cannot say).
type OverrideItem struct {
	store.SDGOverride
	ReportedAt *time.Time `json:"reported_at"`
}

// getOverrides lists the SDG overrides in force, each with whether and
// when the cloud got it (the leader's view, as status's cloud part).
func (s *Server) getOverrides(c *gin.Context) {
	ctx := c.Request.Context()
	os, err := s.deps.Reader.SDGOverrides(ctx)
	if err != nil {
		fail(c, http.StatusInternalServerError, "%v", err)
		return
	}
	var reported []ReportedOverride
	if len(os) > 0 {
		if rep := s.cloudStatus(ctx).OverridesReport; rep != nil {
			reported = rep.Overrides
		}
	}
	items := make([]OverrideItem, len(os))
	for i, o := range os {
		items[i] = OverrideItem{SDGOverride: o}
		for _, r := range reported {
			if r.SDGID == o.SDGID && r.At.Equal(o.At) {
				at := r.ReportedAt
				items[i].ReportedAt = &at
			}
		}
	}
	c.JSON(http.StatusOK, gin.H{"overrides": items})
}

// putOverride re-points an SDG's route (the body is an account.Route)
// until it is cleared or the cloud's next revision of the SDG supersedes
// it.
func (s *Server) putOverride(c *gin.Context) {
	var r account.Route
	if !bindJSON(c, &r) {
		return
	}
	s.setOverride(c, &r)
}

// deleteOverride gives an SDG its snapshot route back.
func (s *Server) deleteOverride(c *gin.Context) { s.setOverride(c, nil) }

// setOverride checks the override against the configuration in force
// (store.CheckSDGOverride, the rules of the snapshot's routes) and
// proposes it; the FSM checks it again where it lands.
func (s *Server) setOverride(c *gin.Context, r *account.Route) {
	ctx := c.Request.Context()
	id := c.Param("id")
	snap, err := s.deps.Reader.Snapshot(ctx)
	if err != nil {
		fail(c, http.StatusInternalServerError, "%v", err)
		return
	}
	others, err := s.deps.Reader.SDGOverrides(ctx)
	if err != nil {
		fail(c, http.StatusInternalServerError, "%v", err)
		return
	}
	by := strings.TrimSpace(c.GetHeader(OverrideByHeader))
	if by == "" {
		by = "api"
	}
	if len(by) > 64 {
		fail(c, http.StatusBadRequest, "%s: at most 64 bytes", OverrideByHeader)
		return
	}
	o := store.SDGOverride{SDGID: id, Route: r, By: by, At: time.Now().UTC()}
	if snap != nil {
		o.Revision = snap.Revision
	}
	if r == nil && !knownSDG(snap, others, id) {
		overrideRefused(c, fmt.Errorf("%w: %q is not an SDG of the configuration in force", store.ErrUnknownSDG, id))
		return
	}
	if err := store.CheckSDGOverride(snap, others, o); err != nil {
		overrideRefused(c, err)
		return
	}
	cmd, err := cluster.EncodeSDGOverride(o)
	if err != nil {
		fail(c, http.StatusInternalServerError, "%v", err)
		return
	}
	res, err := s.deps.Cluster.Apply(ctx, cmd)
	switch {
	case errors.Is(err, cluster.ErrNotLeader):
		fail(c, http.StatusServiceUnavailable, "leadership changed while applying; retry: %v", err)
		return
	case err != nil:
		fail(c, http.StatusInternalServerError, "apply: %v", err)
		return
	case res.Err != nil:
		overrideRefused(c, res.Err)
		return
	}
	out := OverrideResponse{SDGID: id}
	if r != nil {
		out.Override = &o
	}
	s.deps.Log.Info("sdg override changed", "sdg_id", id, "by", by, "cleared", r == nil, "revision", o.Revision)
	c.JSON(http.StatusOK, out)
}

func knownSDG(snap *account.Snapshot, others []store.SDGOverride, id string) bool {
	for _, o := range others {
		if o.SDGID == id {
			return true
		}
	}
	if snap != nil {
		for _, g := range snap.SDGs {
			if g.ID == id {
				return true
			}
		}
	}
	return false
}

// overrideRefused answers a refused override: 404 for an unknown SDG, 400
// with the route's problems as details, 409 when the configuration
// changed in between (retry).
func overrideRefused(c *gin.Context, err error) {
	var ve *account.ValidationError
	switch {
	case errors.Is(err, store.ErrUnknownSDG):
		fail(c, http.StatusNotFound, "%v", err)
	case errors.As(err, &ve):
		failDetails(c, http.StatusBadRequest, problemDetails(ve.Problems),
			"override refused: nothing changed: the route does not pass the snapshot's rules once it replaces the SDG's")
	case errors.Is(err, store.ErrInvalidOverride), errors.Is(err, cluster.ErrMalformedCommand):
		fail(c, http.StatusBadRequest, "override refused: nothing changed: %v", err)
	case errors.Is(err, cluster.ErrStaleRevision):
		fail(c, http.StatusConflict, "the configuration changed while the override was applied; check and retry: %v", err)
	default:
		fail(c, http.StatusInternalServerError, "apply: %v", err)
	}
}

// uiOverride sets (r non-nil) or clears an SDG's override by serving the
// API's endpoint in process with the node's admin token, as uiJoin does.
func (s *Server) uiOverride(ctx context.Context, sdgID string, r *account.Route, by string) (int, error) {
	method, body := http.MethodDelete, []byte(nil)
	if r != nil {
		var err error
		if body, err = json.Marshal(r); err != nil {
			return http.StatusInternalServerError, err
		}
		method = http.MethodPut
	}
	return s.serveAPI(ctx, method, "/api/v1/sdgs/"+sdgID+"/override", body,
		http.Header{OverrideByHeader: {by}}, "change overrides")
}
