package web

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"

	"github.com/gin-gonic/gin"

	"github.com/outpost-voice/outpost/appliance/store"
)

// ParkSlot is a park slot a node holds: its call's state (parking,
// parked, ringing) or "reserved" (an attended park's slot).
type ParkSlot struct {
	Slot  int    `json:"slot"`
	State string `json:"state"`
}

// ParkSlots is GET /api/v1/cluster/park/{site}'s answer.
type ParkSlots struct {
	NodeID string     `json:"node_id"`
	Site   string     `json:"site"`
	Slots  []ParkSlot `json:"slots"`
}

// getParkSlots serves GET /api/v1/cluster/park/{site}: the park slots
// of the site this node holds, for another node of the cluster choosing
// a slot or looking for a parked call (admin token; the nodes share it).
func (s *Server) getParkSlots(c *gin.Context) {
	if s.deps.ParkSlots == nil {
		fail(c, http.StatusNotFound, "this node has no call park")
		return
	}
	site := c.Param("site")
	if s.deps.Reader != nil {
		if _, err := s.deps.Reader.Site(c.Request.Context(), site); errors.Is(err, store.ErrNotFound) {
			fail(c, http.StatusNotFound, "no site %q in the configuration", site)
			return
		} else if err != nil {
			fail(c, http.StatusInternalServerError, "read site %q: %v", site, err)
			return
		}
	}
	slots := s.deps.ParkSlots(site)
	if slots == nil {
		slots = []ParkSlot{}
	}
	c.JSON(http.StatusOK, ParkSlots{NodeID: s.deps.NodeID, Site: site, Slots: slots})
}

// ParkSlots asks the node this client talks to which park slots of site
// it holds.
func (c *Client) ParkSlots(ctx context.Context, site string) (ParkSlots, error) {
	var out ParkSlots
	if err := c.do(ctx, http.MethodGet, "/api/v1/cluster/park/"+url.PathEscape(site), nil, &out); err != nil {
		return ParkSlots{}, fmt.Errorf("ask for park slots: %w", err)
	}
	return out, nil
}
