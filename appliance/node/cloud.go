package node

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"sync"
	"time"

	"github.com/outpost-voice/outpost/account"
	"github.com/outpost-voice/outpost/appliance/cluster"
	"github.com/outpost-voice/outpost/appliance/store"
	"github.com/outpost-voice/outpost/appliance/web"
	"github.com/outpost-voice/outpost/cloudsync"
	"github.com/outpost-voice/outpost/cloudsync/protocol"
)

// The control plane (docs/sync-protocol.md). One node of the cluster is
// paired (its credentials in cloud.credentials_file); it shares that
// identity through Raft (set_cloud_credentials), so whichever node leads
// can talk to the cloud. Only the Raft leader does: it probes the cloud
// (hello) every cloud.probe_interval, drives the mode from what it sees
// (cloudsync.ModeMachine, the mode replicated through Raft), and runs the
// pull loop (cloudsync.Syncer) that applies the cloud's revisions through
// Raft. When leadership moves, the loops move: the new leader starts from
// the replicated mode and revision, so nothing is applied twice or
// skipped. A signed push from the cloud only wakes the pull.

// cloudState is the node's side of the control plane. Its identity may
// arrive (or change, when a node is paired again) while the node runs.
type cloudState struct {
	mu        sync.Mutex
	creds     *cloudsync.Credentials // nil until paired
	client    *cloudsync.Client
	push      http.Handler                // the push receiver for creds; it wakes the syncer
	identity  uint64                      // counts identity changes: the leader's loops restart on one
	syncer    *cloudsync.Syncer           // while this node leads
	reporter  *cloudsync.OverrideReporter // while this node leads
	reachable bool
	probeErr  string

	fileMod time.Time // the credentials file's mtime when last read
}

// use makes creds the identity the node talks to the cloud with, when it
// is not already.
func (c *cloudState) use(creds cloudsync.Credentials, log *slog.Logger) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.creds != nil && *c.creds == creds {
		return nil
	}
	client, err := cloudsync.NewClient(creds)
	if err != nil {
		return fmt.Errorf("cloud client: %w", err)
	}
	key, err := creds.PushKeyBytes()
	if err != nil {
		return fmt.Errorf("cloud credentials: %w", err)
	}
	c.creds, c.client = &creds, client
	c.push = cloudsync.PushHandler(protocol.NewPushVerifier(key, time.Now), func(protocol.Push) { c.wake() }, log)
	c.identity++
	return nil
}

// current is the identity and client in use (nil when not paired) and
// their generation.
func (c *cloudState) current() (*cloudsync.Credentials, *cloudsync.Client, uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.creds, c.client, c.identity
}

// ServeHTTP receives pushes with the identity in use.
func (c *cloudState) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	c.mu.Lock()
	h := c.push
	c.mu.Unlock()
	if h == nil {
		http.Error(w, "this appliance is not paired with a cloud", http.StatusNotFound)
		return
	}
	h.ServeHTTP(w, r)
}

func (c *cloudState) wake() {
	c.mu.Lock()
	s := c.syncer
	c.mu.Unlock()
	if s != nil {
		s.Wake()
	}
}

// setLeading records the loops of this node while it leads the cloud
// sync (nil, nil when it stops).
func (c *cloudState) setLeading(s *cloudsync.Syncer, r *cloudsync.OverrideReporter) {
	c.mu.Lock()
	c.syncer, c.reporter = s, r
	c.mu.Unlock()
}

func (c *cloudState) probed(err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.reachable = err == nil
	c.probeErr = ""
	if err != nil {
		c.probeErr = err.Error()
	}
}

// status is the cloud part of /api/v1/status, as this node sees it (a
// follower does not talk to the cloud: it shows the URL only); nil when
// not paired.
func (c *cloudState) status() *web.CloudStatus {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.creds == nil {
		return nil
	}
	st := web.CloudStatus{URL: c.creds.URL, Reachable: c.reachable, LastError: c.probeErr}
	if c.syncer != nil {
		s := c.syncer.Status()
		if !s.LastSyncAt.IsZero() {
			t := s.LastSyncAt
			st.LastSyncAt = &t
		}
		if st.LastError == "" {
			st.LastError = s.LastError
		}
	}
	if c.reporter != nil {
		st.OverridesReport = overridesReport(c.reporter.Status())
	}
	return &st
}

// cloudStatus is the cloud part of the status; nil when not paired. Only
// the leader talks to the cloud: a follower shows the leader's view (its
// own, the URL only, while no leader answers).
func (n *Node) cloudStatus(ctx context.Context) *web.CloudStatus {
	own := n.cloud.status()
	if own == nil {
		if n.cfg.Cloud.URL == "" {
			return nil
		}
		return &web.CloudStatus{URL: n.cfg.Cloud.URL, LastError: errNotPairedHint}
	}
	if !n.cluster.IsLeader() {
		if c, err := n.leaderClient(ctx); err == nil {
			lctx, cancel := context.WithTimeout(ctx, time.Second)
			defer cancel()
			if st, err := c.Status(lctx); err == nil && st.Cloud.URL != "" {
				return &st.Cloud
			}
		}
	}
	return own
}

// errNotPairedHint is the status's last_error while no node is paired.
const errNotPairedHint = "not paired: run `outpost pair --cloud URL --code CODE` on one node of the cluster"

// cloudIdentityLoop keeps the node's cloud identity: the newer of its own
// credentials file (read again when it changes, as after `outpost pair`)
// and the one the cluster shares. A file newer than what the cluster holds
// is shared through Raft (the leader keeps the newest pairing).
func (n *Node) cloudIdentityLoop(ctx context.Context) {
	log := n.log.With("component", "cloud")
	path := n.cfg.CloudCredentialsFile()
	var file *cloudsync.Credentials
	warned := false
	every(ctx, time.Second, func() bool {
		if info, err := os.Stat(path); err == nil && !info.ModTime().Equal(n.cloud.fileMod) {
			creds, err := cloudsync.LoadCredentials(path)
			if err != nil {
				log.Error("cannot read the cloud credentials file", "credentials_file", path, "error", err)
			} else {
				file = &creds
			}
			n.cloud.fileMod = info.ModTime()
		}
		shared, found, err := n.store.Reader().CloudCredentials(ctx)
		if err != nil {
			log.Warn("cannot read the shared cloud identity", "error", err)
			return false
		}
		best := (*cloudsync.Credentials)(nil)
		if found {
			c := cloudsync.Credentials(shared)
			best = &c
		}
		if file != nil && (best == nil || file.PairedAt.After(best.PairedAt)) {
			best = file
			if err := n.shareCloudIdentity(ctx, *file); err != nil {
				log.Debug("cannot share the cloud identity yet; retrying", "error", err)
			}
		}
		if best == nil {
			if n.cfg.Cloud.URL != "" && !warned {
				log.Warn("cloud.url is set but no node of this cluster is paired: run `outpost pair`; running offline",
					"credentials_file", path)
				warned = true
			}
			return false
		}
		creds := *best
		if n.cfg.Cloud.URL != "" {
			creds.URL = n.cfg.Cloud.URL // the configuration names where the cloud is now
		}
		if err := n.cloud.use(creds, log); err != nil {
			log.Error("cannot use the cloud identity", "error", err)
		}
		return false
	})
}

// shareCloudIdentity proposes creds to the cluster (through the leader).
func (n *Node) shareCloudIdentity(ctx context.Context, creds cloudsync.Credentials) error {
	cmd, err := cluster.EncodeCloudCredentials(store.CloudCredentials(creds))
	if err != nil {
		return err
	}
	return n.onLeader(ctx, n.cluster.Apply, func(ctx context.Context, c *web.Client) error {
		return c.ApplyShared(ctx, cmd)
	}, cmd)
}

// cloudLoop runs the control plane's loops while this node leads and the
// cluster is paired, until ctx ends.
func (n *Node) cloudLoop(ctx context.Context) {
	log := n.log.With("component", "cloud")
	for ctx.Err() == nil {
		var creds *cloudsync.Credentials
		var client *cloudsync.Client
		var identity uint64
		every(ctx, 250*time.Millisecond, func() bool {
			creds, client, identity = n.cloud.current()
			return creds != nil && n.cluster.IsLeader()
		})
		if ctx.Err() != nil {
			return
		}
		lctx, cancel := context.WithCancel(ctx)
		go every(lctx, 250*time.Millisecond, func() bool {
			if _, _, now := n.cloud.current(); now != identity || !n.cluster.IsLeader() {
				cancel()
				return true
			}
			return false
		})
		log.Info("leading the cloud sync", "cloud", creds.URL, "appliance", creds.ApplianceID)
		n.leadCloud(lctx, client, log)
		cancel()
		n.cloud.setLeading(nil, nil)
	}
}

// leadCloud probes the cloud, drives the mode and runs the pull loop until
// ctx ends (leadership lost, or the node stops).
func (n *Node) leadCloud(ctx context.Context, client *cloudsync.Client, log *slog.Logger) {
	syncer, err := cloudsync.NewSyncer(cloudsync.SyncerConfig{
		Client: client, Applier: nodeApplier{n}, NodeID: n.cfg.NodeID, Log: n.log, // it names its component
	})
	if err != nil {
		log.Error("cannot start the cloud sync", "error", err)
		return
	}
	uploader, err := cloudsync.NewUploader(cloudsync.UploaderConfig{
		Client: client, Journal: nodeJournal{n}, Log: n.log,
	})
	if err != nil {
		log.Error("cannot start the journal upload", "error", err)
		return
	}
	vmUploader, err := cloudsync.NewVoicemailUploader(cloudsync.VoicemailUploaderConfig{
		Client: client, Source: cloudVoicemail{n}, Log: n.log,
	})
	if err != nil {
		log.Error("cannot start the voicemail upload", "error", err)
		return
	}
	reporter, err := cloudsync.NewOverrideReporter(cloudsync.OverrideReporterConfig{
		Client: client, Source: nodeOverrides{n}, Log: n.log,
	})
	if err != nil {
		log.Error("cannot start the sdg override reports", "error", err)
		return
	}
	n.cloud.setLeading(syncer, reporter)
	var wg sync.WaitGroup
	wg.Add(4)
	go func() { defer wg.Done(); syncer.Run(ctx) }()
	go func() { defer wg.Done(); uploader.Run(ctx) }()
	go func() { defer wg.Done(); vmUploader.Run(ctx) }()
	go func() { defer wg.Done(); reporter.Run(ctx) }()
	defer wg.Wait()

	r := n.store.Reader()
	current, _, err := r.Mode(ctx)
	if err != nil {
		log.Error("read mode", "error", err)
		return
	}
	start, err := cloudsync.ParseMode(current)
	if err != nil {
		start = cloudsync.ModeNormal
	}
	modes := cloudsync.NewModeMachine(start, n.cfg.Cloud.OutageAfter.Duration, n.cfg.Cloud.RecoverAfter.Duration)
	reachable := true
	every(ctx, n.cfg.Cloud.ProbeInterval.Duration, func() bool {
		rev, _ := r.Revision(ctx)
		h := protocol.Hello{NodeID: n.cfg.NodeID, Revision: rev, PushURL: "http://" + n.httpAdvertise}
		if ovs, err := r.SDGOverrides(ctx); err == nil {
			count := len(ovs)
			h.Overrides = &count
		}
		hello, err := client.Hello(ctx, h)
		if ctx.Err() != nil {
			return true
		}
		n.cloud.probed(err)
		if err == nil && !reachable {
			// Back: pull, upload and report now, not after the loops'
			// backoff (up to 60 s) runs out.
			syncer.Wake()
			uploader.Kick()
			vmUploader.Kick()
			reporter.Kick()
		}
		reachable = err == nil
		now := time.Now().UTC()
		modes.Observe(err == nil, now)
		if modes.Mode() == cloudsync.ModeRecovering {
			// Recovering: pull what was missed, give back the journal
			// and report the SDG overrides in force, then normal. A
			// cloud at the revision the cluster serves has nothing to
			// pull, whatever the syncer has heard yet (its long poll may
			// be held until the cloud changes or its wait, 30 s, ends).
			// The journal is given back when no record is pending: the
			// uploader's Drained is as old as its last look, which may
			// predate the records journalled in the outage. The
			// overrides are reported when the cloud took the very list
			// in force now.
			caughtUp := syncer.Status().CaughtUp || (err == nil && hello.Revision == rev)
			pending, perr := r.CountPendingCallRecords(ctx)
			reported, rerr := reporter.UpToDate(ctx)
			if caughtUp && perr == nil && pending == 0 && rerr == nil && reported {
				modes.RecoveryDone()
			} else {
				uploader.Kick()
				vmUploader.Kick()
				if !reported {
					reporter.Kick()
				}
			}
		}
		// The replicated mode follows the machine; a failed proposal is
		// tried again at the next probe.
		if replicated, _, err := r.Mode(ctx); err == nil && replicated != string(modes.Mode()) {
			if err := n.proposeMode(ctx, string(modes.Mode()), now); err != nil {
				log.Warn("cannot record the mode yet", "mode", modes.Mode(), "error", err)
			} else {
				log.Info("mode changed", "from", replicated, "to", modes.Mode(), "cloud_reachable", err == nil)
			}
		}
		return false
	})
}

func (n *Node) proposeMode(ctx context.Context, mode string, since time.Time) error {
	cmd, err := cluster.EncodeMode(mode, since)
	if err != nil {
		return err
	}
	res, err := n.cluster.Apply(ctx, cmd)
	if err == nil {
		err = res.Err
	}
	return err
}

// nodeApplier is the cluster as the syncer sees it.
type nodeApplier struct{ n *Node }

func (a nodeApplier) CurrentRevision(ctx context.Context) (int64, error) {
	return a.n.store.Reader().Revision(ctx)
}

func (a nodeApplier) CurrentSnapshot(ctx context.Context) (*account.Snapshot, error) {
	return a.n.store.Reader().Snapshot(ctx)
}

// Apply validates snap as any snapshot and proposes it through Raft whole,
// as POST /api/v1/snapshot does. A refusal is an *account.ValidationError.
func (a nodeApplier) Apply(ctx context.Context, snap *account.Snapshot) error {
	if err := a.validate(ctx, snap); err != nil {
		return err
	}
	doc, err := snap.Encode()
	if err != nil {
		return fmt.Errorf("encode revision %d: %w", snap.Revision, err)
	}
	return a.propose(ctx, cluster.EncodeSnapshot(doc), false)
}

// ApplyChanges validates next and proposes ops, from base, through Raft.
func (a nodeApplier) ApplyChanges(ctx context.Context, base int64, ops []protocol.Op, next *account.Snapshot) error {
	if err := a.validate(ctx, next); err != nil {
		return err
	}
	cmd, err := cluster.EncodeChanges(base, next.Revision, ops)
	if err != nil {
		return err
	}
	return a.propose(ctx, cmd, true)
}

func (a nodeApplier) validate(ctx context.Context, snap *account.Snapshot) error {
	cur, err := a.n.store.Reader().Revision(ctx)
	if err != nil {
		return fmt.Errorf("read current revision: %w", err)
	}
	return account.Validate(snap, cur)
}

// propose puts a configuration entry through Raft. A revision the FSM
// refuses for what it holds (a dial string reaching two things, changes
// that do not fit) is a rejection; changes whose base is no longer served
// are cloudsync.ErrStale.
func (a nodeApplier) propose(ctx context.Context, cmd []byte, changes bool) error {
	res, err := a.n.cluster.Apply(ctx, cmd)
	if err != nil {
		return err
	}
	switch {
	case errors.Is(res.Err, cluster.ErrStaleRevision) && changes:
		return fmt.Errorf("%w: %w", cloudsync.ErrStale, res.Err)
	case errors.Is(res.Err, cluster.ErrStaleRevision), errors.Is(res.Err, store.ErrConflict), errors.Is(res.Err, account.ErrBadChange):
		return &account.ValidationError{Problems: []account.Problem{{Path: "revision", Message: res.Err.Error()}}}
	}
	return res.Err
}
