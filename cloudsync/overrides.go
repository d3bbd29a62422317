package cloudsync

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/outpost-voice/outpost/cloudsync/protocol"
)

// OverrideSource is what the OverrideReporter needs from the appliance:
// the emergency SDG overrides in force (replicated: every node has the
// same).
type OverrideSource interface {
	Overrides(ctx context.Context) ([]protocol.Override, error)
}

// OverrideReporterConfig configures an OverrideReporter. Client and
// Source are required.
type OverrideReporterConfig struct {
	Client *Client
	Source OverrideSource
	Log    *slog.Logger // default: discard
	// Interval is how often Run reads the overrides in force to see
	// whether they changed since the cloud's last report (1 s: a read of
	// a small table); Kick reads at once.
	Interval time.Duration
	Backoff  *Backoff                             // default NewBackoff(nil)
	Now      func() time.Time                     // default time.Now
	After    func(time.Duration) <-chan time.Time // default time.After
}

// ReportedOverride is an override of the last report the cloud took, and
// when the cloud first took a report holding it (the same override: same
// SDG, route, author, time and revision).
type ReportedOverride struct {
	SDGID      string
	At         time.Time // the override's time (protocol.Override.At)
	ReportedAt time.Time
}

// OverrideReportStatus is what the OverrideReporter knows, in memory only:
// a new reporter (a new leader) knows nothing until the cloud takes its
// first report.
type OverrideReportStatus struct {
	Key        string             // the Idempotency-Key of the last report the cloud took; "" before the first
	ReportedAt time.Time          // when the cloud took it
	Overrides  []ReportedOverride // its overrides, by SDG id
	// Unsupported: the cloud's last answer said it does not take reports
	// (ErrOverridesUnsupported). Run keeps asking at the slowest pace.
	Unsupported bool
	LastError   string // last failure; "" after a success
	LastErrorAt time.Time
}

// OverrideReporter keeps the cloud's view of the SDG overrides in force
// current (docs/sync-protocol.md, "SDG overrides"): whenever the list
// differs from the last one the cloud took, it sends the whole list, under
// an Idempotency-Key made from its content (OverridesKey). The node runs it
// on the leader, and recovery waits until the cloud has the list in force
// (UpToDate).
type OverrideReporter struct {
	*loop
	cfg OverrideReporterConfig

	mu     sync.Mutex
	status OverrideReportStatus
	// first is when the cloud first took each override of the last
	// report, by overrideIdentity.
	first map[string]time.Time
}

// NewOverrideReporter checks cfg and fills its defaults.
func NewOverrideReporter(cfg OverrideReporterConfig) (*OverrideReporter, error) {
	if cfg.Client == nil || cfg.Source == nil {
		return nil, errors.New("new override reporter: a client and a source are required")
	}
	l := newLoop(loopConfig{Log: cfg.Log, Interval: cfg.Interval, Backoff: cfg.Backoff, Now: cfg.Now, After: cfg.After},
		time.Second, "component", "cloudsync", "loop", "overrides")
	return &OverrideReporter{loop: l, cfg: cfg}, nil
}

// canonicalOverrides is os by SDG id, times in UTC: the report's body and
// what its key is made from.
func canonicalOverrides(os []protocol.Override) []protocol.Override {
	out := make([]protocol.Override, len(os))
	for i, o := range os {
		o.At = o.At.UTC()
		out[i] = o
	}
	slices.SortStableFunc(out, func(a, b protocol.Override) int { return cmp.Compare(a.SDGID, b.SDGID) })
	return out
}

// OverridesKey is the Idempotency-Key of a report of os: a hash of its
// content, whatever the order of os, so the same list always has the same
// key and a different one (another route, author, time or revision) a
// different key.
func OverridesKey(os []protocol.Override) (string, error) {
	body, err := json.Marshal(canonicalOverrides(os))
	if err != nil {
		return "", fmt.Errorf("sdg overrides key: %w", err)
	}
	h := sha256.New()
	h.Write([]byte("outpost-overrides-v1\n"))
	h.Write(body)
	return hex.EncodeToString(h.Sum(nil)), nil
}

// Status is a copy of what the reporter knows.
func (r *OverrideReporter) Status() OverrideReportStatus {
	r.mu.Lock()
	defer r.mu.Unlock()
	st := r.status
	st.Overrides = slices.Clone(st.Overrides)
	return st
}

// Run reports the overrides in force now, then looks again every
// Interval or Kick, reporting when they changed, until ctx ends. Failures
// are retried with backoff (at the slowest pace when the cloud refuses
// the report: a bug on one side, or a cloud without reports).
func (r *OverrideReporter) Run(ctx context.Context) {
	run(ctx, r.loop, "sdg override report failed; retrying", r.Report, func(err error) slog.Level {
		if errors.Is(err, ErrOverridesUnsupported) {
			return slog.LevelDebug // said once, at warn, by failed
		}
		return slog.LevelWarn
	})
}

// read is the overrides in force, canonical, and their key.
func (r *OverrideReporter) read(ctx context.Context) ([]protocol.Override, string, error) {
	os, err := r.cfg.Source.Overrides(ctx)
	if err != nil {
		return nil, "", fmt.Errorf("read the sdg overrides in force: %w", err)
	}
	os = canonicalOverrides(os)
	key, err := OverridesKey(os)
	if err != nil {
		return nil, "", err
	}
	return os, key, nil
}

// Report sends the overrides in force unless the cloud took that very
// list last (from this reporter), and says whether it sent them.
func (r *OverrideReporter) Report(ctx context.Context) (bool, error) {
	os, key, err := r.read(ctx)
	if err != nil {
		return false, r.failed(err)
	}
	r.mu.Lock()
	same := key == r.status.Key
	r.mu.Unlock()
	if same {
		return false, nil
	}
	receipt, err := r.cfg.Client.ReportOverrides(ctx, key, os)
	if err != nil {
		return false, r.failed(err)
	}
	r.took(key, os, r.now())
	r.log.Info("sdg overrides reported", "overrides", receipt.Accepted, "idempotency_key", key)
	return true, nil
}

// UpToDate says whether the cloud has the overrides in force now: it took
// a report of this very list from this reporter, or it does not take
// reports at all (recovery does not wait for a cloud that cannot take
// them).
func (r *OverrideReporter) UpToDate(ctx context.Context) (bool, error) {
	_, key, err := r.read(ctx)
	if err != nil {
		return false, err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.status.Unsupported || key == r.status.Key, nil
}

// took records that the cloud took the report os, under key, at now: an
// override the previous report held keeps when it was first reported.
func (r *OverrideReporter) took(key string, os []protocol.Override, now time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	first := make(map[string]time.Time, len(os))
	reported := make([]ReportedOverride, len(os))
	for i, o := range os {
		id := overrideIdentity(o)
		at, ok := r.first[id]
		if !ok {
			at = now
		}
		first[id] = at
		reported[i] = ReportedOverride{SDGID: o.SDGID, At: o.At, ReportedAt: at}
	}
	r.first = first
	r.status = OverrideReportStatus{Key: key, ReportedAt: now, Overrides: reported}
}

// overrideIdentity tells overrides apart: the same SDG, route, author,
// time and revision is the same override.
func overrideIdentity(o protocol.Override) string {
	b, _ := json.Marshal(o) // it encoded for the report's key already
	return string(b)
}

func (r *OverrideReporter) failed(err error) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	unsupported := errors.Is(err, ErrOverridesUnsupported)
	if unsupported && !r.status.Unsupported {
		r.log.Warn("the cloud does not take sdg override reports: recovery will not wait for them; asking again at the slowest pace",
			"error", err)
	}
	r.status.Unsupported = unsupported
	r.status.LastError = err.Error()
	r.status.LastErrorAt = r.now()
	return err
}
