package sbc

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/outpost-voice/outpost/account"
)

// ELINHold is how long a PSTN call to an ELIN rings the user whose emergency
// call presented it.
const ELINHold = 2 * time.Hour

// ErrNoELIN: the site's elin_pool is empty. The emergency call still goes
// out, with EmergencyCallerID's fallback.
var ErrNoELIN = errors.New("site has no ELIN")

// ELINMapping says which user an ELIN calls back to. It lives on the presence
// plane: one record per ELIN (ID from the ELIN), replicated by the caller and
// merged idempotently with Merge (newest UpdatedAt wins).
type ELINMapping struct {
	ID        string    `json:"id"` // ELINMappingID(ELIN)
	ELIN      string    `json:"elin"`
	Site      string    `json:"site"`
	UserID    string    `json:"user_id"`
	CalledAt  time.Time `json:"called_at"`  // the emergency call
	ExpiresAt time.Time `json:"expires_at"` // CalledAt + ELINHold
	UpdatedAt time.Time `json:"updated_at"` // version: newest wins
}

// ELINMappingID is the stable id of an ELIN's record: every node that assigns
// that ELIN writes the same record, so merges converge.
func ELINMappingID(elin string) string { return "elin:" + elin }

// Active reports whether the mapping still routes calls to its user at now.
func (m ELINMapping) Active(now time.Time) bool {
	return m.UserID != "" && now.Before(m.ExpiresAt)
}

// Supersedes reports whether m replaces o when both describe the same ELIN:
// the newer UpdatedAt wins; exact ties are broken on the other fields so
// every node picks the same one.
func (m ELINMapping) Supersedes(o ELINMapping) bool {
	return cmp.Or(
		m.UpdatedAt.Compare(o.UpdatedAt),
		m.CalledAt.Compare(o.CalledAt),
		cmp.Compare(m.UserID, o.UserID),
		cmp.Compare(m.Site, o.Site),
	) > 0
}

// Merge returns whichever of a and b wins. It is commutative, associative
// and idempotent, so replaying or reordering replicated updates is safe.
func Merge(a, b ELINMapping) ELINMapping {
	if b.Supersedes(a) {
		return b
	}
	return a
}

// ELINStore holds the mappings. The real one is the presence plane (SQLite,
// shared through Raft); MemoryELINStore serves tests and single nodes.
type ELINStore interface {
	// GetELINs returns the stored mappings of these ELINs, expired or not;
	// an ELIN never assigned is absent.
	GetELINs(ctx context.Context, elins []string) ([]ELINMapping, error)
	// PutELIN stores m unless the stored mapping of its ELIN supersedes it.
	PutELIN(ctx context.Context, m ELINMapping) error
}

// ELINs assigns and looks up ELINs. Assignments on one node are serialised;
// two nodes assigning the same ELIN at once converge on the newer mapping.
type ELINs struct {
	store ELINStore
	log   *slog.Logger
	mu    sync.Mutex
}

// NewELINs returns an ELINs over store.
func NewELINs(store ELINStore, log *slog.Logger) *ELINs {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &ELINs{store: store, log: log.With("component", "sbc")}
}

// Assign picks the ELIN to present on userID's emergency call from site at
// now (see ChooseELIN), records the mapping and returns it.
func (e *ELINs) Assign(ctx context.Context, site account.Site, userID string, now time.Time) (ELINMapping, error) {
	if userID == "" {
		return ELINMapping{}, errors.New("assign elin: no user id; emergency calls need an authenticated user")
	}
	pool := site.Emergency.ELINPool
	if len(pool) == 0 {
		return ELINMapping{}, fmt.Errorf("assign elin for site %s: %w; add numbers to the site's emergency.elin_pool", site.ID, ErrNoELIN)
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	known, err := e.store.GetELINs(ctx, pool)
	if err != nil {
		return ELINMapping{}, fmt.Errorf("assign elin for site %s: read mappings: %w", site.ID, err)
	}
	elin, prev := ChooseELIN(pool, known, userID, now)
	m := ELINMapping{
		ID: ELINMappingID(elin), ELIN: elin, Site: site.ID, UserID: userID,
		CalledAt: now, ExpiresAt: now.Add(ELINHold), UpdatedAt: now,
	}
	if !now.After(prev.UpdatedAt) {
		m.UpdatedAt = prev.UpdatedAt.Add(time.Nanosecond) // a clock behind the last writer must still win
	}
	if err := e.store.PutELIN(ctx, m); err != nil {
		return ELINMapping{}, fmt.Errorf("assign elin %s for site %s: store mapping: %w", elin, site.ID, err)
	}
	log := e.log.With("site", site.ID, "elin", elin, "user_id", userID)
	if prev.Active(now) && prev.UserID != userID {
		log.Warn("elin pool exhausted: reused the oldest mapping; its call-back now rings the new caller",
			"displaced_user_id", prev.UserID, "displaced_called_at", prev.CalledAt)
	} else {
		log.Info("elin assigned", "expires_at", m.ExpiresAt)
	}
	return m, nil
}

// Lookup returns the active mapping of elin at now: whom a PSTN call to it rings.
func (e *ELINs) Lookup(ctx context.Context, elin string, now time.Time) (ELINMapping, bool, error) {
	found, err := e.store.GetELINs(ctx, []string{elin})
	if err != nil {
		return ELINMapping{}, false, fmt.Errorf("look up elin %s: %w", elin, err)
	}
	var best ELINMapping
	for _, m := range found {
		if m.ELIN == elin {
			best = Merge(best, m)
		}
	}
	if !best.Active(now) {
		return ELINMapping{}, false, nil
	}
	return best, true, nil
}

// ChooseELIN picks an ELIN from pool for userID at now, given the known
// mappings, and returns it with its previous mapping (zero when none). It is
// pure. In order of preference:
//  1. one mapped to this user, active or expired, the latest first (the
//     PSAP may already have it);
//  2. a free one (never used, or expired): the least recently used first;
//  3. all in use: the one whose mapping is oldest, which is taken over.
//
// Ties keep pool order. pool must not be empty.
func ChooseELIN(pool []string, known []ELINMapping, userID string, now time.Time) (string, ELINMapping) {
	byELIN := make(map[string]ELINMapping, len(known))
	for _, m := range known {
		byELIN[m.ELIN] = Merge(byELIN[m.ELIN], m)
	}
	rank := func(m ELINMapping) int {
		switch {
		case m.UserID == userID && m.UserID != "":
			return 0
		case !m.Active(now):
			return 1
		default:
			return 2
		}
	}
	candidates := slices.Clone(pool)
	slices.SortStableFunc(candidates, func(a, b string) int {
		ma, mb := byELIN[a], byELIN[b]
		if c := cmp.Compare(rank(ma), rank(mb)); c != 0 {
			return c
		}
		if rank(ma) == 0 {
			return mb.CalledAt.Compare(ma.CalledAt) // own: latest first
		}
		return ma.CalledAt.Compare(mb.CalledAt) // others: least recently used first
	})
	return candidates[0], byELIN[candidates[0]]
}

// MemoryELINStore is an in-memory ELINStore. Safe for concurrent use.
type MemoryELINStore struct {
	mu sync.Mutex
	m  map[string]ELINMapping
}

// NewMemoryELINStore returns an empty store.
func NewMemoryELINStore() *MemoryELINStore {
	return &MemoryELINStore{m: make(map[string]ELINMapping)}
}

// GetELINs implements ELINStore.
func (s *MemoryELINStore) GetELINs(_ context.Context, elins []string) ([]ELINMapping, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []ELINMapping
	for _, elin := range elins {
		if m, ok := s.m[elin]; ok {
			out = append(out, m)
		}
	}
	return out, nil
}

// PutELIN implements ELINStore with Merge.
func (s *MemoryELINStore) PutELIN(_ context.Context, m ELINMapping) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.m[m.ELIN] = Merge(s.m[m.ELIN], m)
	return nil
}
