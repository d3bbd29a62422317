package web

import (
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

// TestParkSlotsEndpoint: GET /api/v1/cluster/park/{site} answers the
// node's slots of the site to a holder of the node token only; a node
// without call park says so.
func TestParkSlotsEndpoint(t *testing.T) {
	var asked string
	s := New(Deps{NodeID: "n2", AdminToken: token, Log: slog.New(slog.DiscardHandler), Registry: prometheus.NewRegistry(),
		ParkSlots: func(site string) []ParkSlot {
			asked = site
			if site == "hq" {
				return []ParkSlot{{Slot: 1, State: "parked"}, {Slot: 2, State: "reserved"}}
			}
			return nil
		}})
	srv := httptest.NewServer(s.Handler())
	defer srv.Close()

	got, err := NewClient(srv.URL, token).ParkSlots(t.Context(), "hq")
	if err != nil {
		t.Fatal(err)
	}
	if asked != "hq" || got.NodeID != "n2" || got.Site != "hq" || len(got.Slots) != 2 || got.Slots[1] != (ParkSlot{Slot: 2, State: "reserved"}) {
		t.Fatalf("hq: %+v (asked %q)", got, asked)
	}
	if got, err := NewClient(srv.URL, token).ParkSlots(t.Context(), "branch"); err != nil || got.Slots == nil || len(got.Slots) != 0 {
		t.Fatalf("branch: %+v, %v; want an empty list", got, err)
	}
	var apiErr *APIError
	if _, err := NewClient(srv.URL, "wrong").ParkSlots(t.Context(), "hq"); !errors.As(err, &apiErr) || apiErr.Status != http.StatusUnauthorized {
		t.Fatalf("a wrong token: %v, want 401", err)
	}

	none := httptest.NewServer(New(Deps{NodeID: "n3", AdminToken: token, Log: slog.New(slog.DiscardHandler), Registry: prometheus.NewRegistry()}).Handler())
	defer none.Close()
	if _, err := NewClient(none.URL, token).ParkSlots(t.Context(), "hq"); !errors.As(err, &apiErr) || apiErr.Status != http.StatusNotFound {
		t.Fatalf("a node without call park: %v, want 404", err)
	}
}
