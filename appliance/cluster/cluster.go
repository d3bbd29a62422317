package cluster

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
	wal "github.com/hashicorp/raft-wal"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/outpost-voice/outpost/appliance/store"
)

// ErrNotLeader is returned by writes on a follower; the caller forwards the
// write to the leader (web does it for the HTTP API).
var ErrNotLeader = errors.New("not the raft leader")

// ErrForeignStore is returned by Open for a database that was filled by a
// Raft history this node no longer has: trusting it would skip entries.
var ErrForeignStore = errors.New("store belongs to another raft history")

// Config is what Open needs. Listener is the bound Raft transport socket;
// Advertise is the address other members dial to reach it.
type Config struct {
	NodeID            string
	RaftDir           string
	Listener          net.Listener
	Advertise         string
	Bootstrap         bool // form a one-node cluster when there is no Raft state
	HeartbeatTimeout  time.Duration
	ElectionTimeout   time.Duration
	SnapshotThreshold uint64
	Store             *store.Store
	Log               *slog.Logger
}

// Cluster is one node's Raft instance with its FSM and durable logs.
type Cluster struct {
	cfg       Config
	log       *slog.Logger
	raft      *raft.Raft
	fsm       *FSM
	wal       *wal.WAL
	transport *raft.NetworkTransport

	applyLatency prometheus.Histogram
	batcher      *Batcher
	stopWatch    chan struct{} // stops handOffWhileStalled

	shutdownOnce sync.Once
	shutdownErr  error
}

// Open starts Raft on cfg.Listener. A node with no Raft state bootstraps a
// one-node cluster when cfg.Bootstrap is set; otherwise it waits to be added
// by a leader (see Join).
func Open(cfg Config) (*Cluster, error) {
	if cfg.Advertise == "" {
		cfg.Advertise = cfg.Listener.Addr().String()
	}
	if err := os.MkdirAll(filepath.Join(cfg.RaftDir, "wal"), 0o700); err != nil {
		return nil, fmt.Errorf("create raft dir: %w", err)
	}
	log := cfg.Log.With("component", "cluster")
	hlog := newHCLogBridge(cfg.Log.With("component", "raft"), hclog.Info)

	fsm, err := NewFSM(cfg.Store, cfg.Log.With("component", "fsm"))
	if err != nil {
		return nil, err
	}
	logs, err := wal.Open(filepath.Join(cfg.RaftDir, "wal"), wal.WithLogger(hlog.Named("wal")))
	if err != nil {
		return nil, fmt.Errorf("open raft log: %w", err)
	}
	snaps, err := raft.NewFileSnapshotStoreWithLogger(cfg.RaftDir, 2, hlog.Named("snapshots"))
	if err != nil {
		_ = logs.Close()
		return nil, fmt.Errorf("open raft snapshots: %w", err)
	}
	if err := restoreIfBehind(snaps, fsm, log); err != nil {
		_ = logs.Close()
		return nil, err
	}
	adv, err := net.ResolveTCPAddr("tcp", cfg.Advertise)
	if err != nil {
		_ = logs.Close()
		return nil, fmt.Errorf("raft advertise address %q: %w", cfg.Advertise, err)
	}
	transport := raft.NewNetworkTransportWithLogger(&streamLayer{Listener: cfg.Listener, advertise: adv},
		5, 10*time.Second, hlog.Named("transport"))

	rc := raft.DefaultConfig()
	rc.LocalID = raft.ServerID(cfg.NodeID)
	rc.Logger = hlog
	rc.HeartbeatTimeout = cfg.HeartbeatTimeout
	rc.ElectionTimeout = cfg.ElectionTimeout
	rc.LeaderLeaseTimeout = min(cfg.HeartbeatTimeout/2, rc.LeaderLeaseTimeout)
	rc.CommitTimeout = 5 * time.Millisecond
	rc.SnapshotThreshold = cfg.SnapshotThreshold
	rc.TrailingLogs = max(cfg.SnapshotThreshold, 1024)
	rc.BatchApplyCh = true
	rc.MaxAppendEntries = 256
	rc.NoSnapshotRestoreOnStart = true // the store persists; FSM skips what it holds

	has, err := raft.HasExistingState(logs, logs, snaps)
	if err != nil {
		_ = logs.Close()
		return nil, fmt.Errorf("read raft state: %w", err)
	}
	if !has && fsm.AppliedIndex() > 0 {
		_ = logs.Close()
		return nil, fmt.Errorf("%w: the database holds entries up to raft index %d but %s has no raft state; "+
			"move the database aside (the cluster refills it) or put the raft directory back", ErrForeignStore, fsm.AppliedIndex(), cfg.RaftDir)
	}
	// The leader sends each follower an AppendEntries every CommitTimeout
	// (5 to 10 ms) even when idle, and each one reads the entry before it
	// (its term) back from the log. Read from raft-wal, that entry is
	// decoded and copied every time: when it is a whole account revision
	// (about 4 MiB for 10,000 users) the leader spent about a third of a
	// core re-reading it until the next entry came, and its garbage
	// raised the peak RSS. The cache keeps the last entry written, and
	// only that one, so what it holds is bounded.
	cached, err := raft.NewLogCache(1, logs)
	if err != nil {
		_ = logs.Close()
		return nil, fmt.Errorf("raft log cache: %w", err)
	}
	r, err := raft.NewRaft(rc, fsm, cached, logs, snaps, transport)
	if err != nil {
		_ = logs.Close()
		return nil, fmt.Errorf("start raft: %w", err)
	}
	c := &Cluster{cfg: cfg, log: log, raft: r, fsm: fsm, wal: logs, transport: transport, applyLatency: newApplyLatency(),
		stopWatch: make(chan struct{})}
	c.batcher = newBatcher(c)
	go c.handOffWhileStalled(c.stopWatch)
	if !has && cfg.Bootstrap {
		boot := raft.Configuration{Servers: []raft.Server{{
			Suffrage: raft.Voter, ID: rc.LocalID, Address: raft.ServerAddress(cfg.Advertise),
		}}}
		if err := r.BootstrapCluster(boot).Error(); err != nil && !errors.Is(err, raft.ErrCantBootstrap) {
			_ = c.Shutdown()
			return nil, fmt.Errorf("bootstrap cluster: %w", err)
		}
		log.Info("bootstrapped a new one-node cluster", "raft_addr", cfg.Advertise)
	}
	return c, nil
}

// FSM is the node's state machine.
func (c *Cluster) FSM() *FSM { return c.fsm }

// Raft exposes the raft instance for metrics and tests.
func (c *Cluster) Raft() *raft.Raft { return c.raft }

// NodeID is this node's Raft server ID.
func (c *Cluster) NodeID() string { return c.cfg.NodeID }

// RaftAddr is the address other members dial.
func (c *Cluster) RaftAddr() string { return c.cfg.Advertise }

// HasHistory reports whether this node has any Raft state (it has been
// bootstrapped or joined).
func (c *Cluster) HasHistory() bool {
	return c.raft.LastIndex() > 0
}

// IsLeader reports whether this node is the leader.
func (c *Cluster) IsLeader() bool { return c.raft.State() == raft.Leader }

// Leader returns the leader's ID and Raft address, empty when unknown.
func (c *Cluster) Leader() (id, raftAddr string) {
	addr, sid := c.raft.LeaderWithID()
	return string(sid), string(addr)
}

// HasQuorum reports whether this node is in touch with a working majority:
// it leads, or it heard from a leader within two election timeouts.
func (c *Cluster) HasQuorum() bool {
	switch c.raft.State() {
	case raft.Leader:
		return true
	case raft.Follower:
		id, _ := c.Leader()
		return id != "" && time.Since(c.raft.LastContact()) < 2*c.cfg.ElectionTimeout
	}
	return false
}

// State is the Raft role: Leader, Follower, Candidate or Shutdown.
func (c *Cluster) State() string { return c.raft.State().String() }

// Apply proposes one encoded command and waits for the FSM's answer. On a
// follower it returns ErrNotLeader without proposing.
func (c *Cluster) Apply(ctx context.Context, cmd []byte) (ApplyResult, error) {
	if !c.IsLeader() {
		return ApplyResult{}, ErrNotLeader
	}
	timeout := 30 * time.Second
	if dl, ok := ctx.Deadline(); ok {
		timeout = time.Until(dl)
	}
	start := time.Now()
	f := c.raft.Apply(cmd, timeout)
	err := f.Error()
	c.applyLatency.Observe(time.Since(start).Seconds())
	if err != nil {
		return ApplyResult{}, fmt.Errorf("raft apply: %w", notLeader(err))
	}
	res, ok := f.Response().(ApplyResult)
	if !ok {
		return ApplyResult{}, fmt.Errorf("raft apply: unexpected FSM response %T", f.Response())
	}
	return res, nil
}

// ApplyBatched proposes a small command through the batcher: under load many
// share one Raft entry. Use it for frequent small writes; whole snapshots go
// through Apply.
func (c *Cluster) ApplyBatched(ctx context.Context, cmd []byte) (ApplyResult, error) {
	return c.batcher.Apply(ctx, cmd)
}

// notLeader marks raft's lost-leadership errors with ErrNotLeader, so
// callers know a retry (on the new leader) may succeed.
func notLeader(err error) error {
	if errors.Is(err, raft.ErrNotLeader) || errors.Is(err, raft.ErrLeadershipLost) ||
		errors.Is(err, raft.ErrLeadershipTransferInProgress) {
		return fmt.Errorf("%w: %w", ErrNotLeader, err)
	}
	return err
}

// Member is one voter of the Raft configuration.
type Member struct {
	ID       string
	RaftAddr string
	Leader   bool
}

// Members lists the Raft configuration as this node knows it.
func (c *Cluster) Members() ([]Member, error) {
	f := c.raft.GetConfiguration()
	if err := f.Error(); err != nil {
		return nil, fmt.Errorf("read raft configuration: %w", err)
	}
	leader, _ := c.Leader()
	var out []Member
	for _, s := range f.Configuration().Servers {
		out = append(out, Member{ID: string(s.ID), RaftAddr: string(s.Address), Leader: string(s.ID) == leader})
	}
	return out, nil
}

// AddVoter adds (or re-addresses) a member. Leader only.
func (c *Cluster) AddVoter(id, raftAddr string) error {
	if !c.IsLeader() {
		return ErrNotLeader
	}
	members, err := c.Members()
	if err != nil {
		return err
	}
	for _, m := range members {
		if m.ID == id && m.RaftAddr == raftAddr {
			return nil // already a member at that address
		}
		if m.ID != id && m.RaftAddr == raftAddr {
			return fmt.Errorf("raft address %s already belongs to member %s", raftAddr, m.ID)
		}
	}
	if err := c.raft.AddVoter(raft.ServerID(id), raft.ServerAddress(raftAddr), 0, 30*time.Second).Error(); err != nil {
		return fmt.Errorf("add voter %s: %w", id, notLeader(err))
	}
	return nil
}

// RemoveServer removes a member. Leader only.
func (c *Cluster) RemoveServer(id string) error {
	if !c.IsLeader() {
		return ErrNotLeader
	}
	if err := c.raft.RemoveServer(raft.ServerID(id), 0, 30*time.Second).Error(); err != nil {
		return fmt.Errorf("remove server %s: %w", id, notLeader(err))
	}
	return nil
}

// WaitForLeader blocks until a leader is known or ctx ends.
func (c *Cluster) WaitForLeader(ctx context.Context) error {
	t := time.NewTicker(20 * time.Millisecond)
	defer t.Stop()
	for {
		if id, _ := c.Leader(); id != "" {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("wait for raft leader: %w", ctx.Err())
		case <-t.C:
		}
	}
}

// LeaderCh reports leadership changes of this node.
func (c *Cluster) LeaderCh() <-chan bool { return c.raft.LeaderCh() }

// Stats are figures for metrics and status.
type Stats struct {
	State        string
	Term         uint64
	LastIndex    uint64
	CommitIndex  uint64
	AppliedIndex uint64
	LastContact  time.Time
}

// Stats reads the node's Raft figures.
func (c *Cluster) Stats() Stats {
	return Stats{
		State:        c.raft.State().String(),
		Term:         c.raft.CurrentTerm(),
		LastIndex:    c.raft.LastIndex(),
		CommitIndex:  c.raft.CommitIndex(),
		AppliedIndex: c.fsm.AppliedIndex(),
		LastContact:  c.raft.LastContact(),
	}
}

// Shutdown hands leadership to another voter when this node leads (so the
// cluster does not wait out an election), then stops Raft and closes its log.
// It is safe to call more than once.
func (c *Cluster) Shutdown() error {
	c.shutdownOnce.Do(func() { c.shutdownErr = c.shutdown() })
	return c.shutdownErr
}

func (c *Cluster) shutdown() error {
	close(c.stopWatch)
	if c.IsLeader() {
		if members, err := c.Members(); err == nil && len(members) > 1 {
			if err := c.raft.LeadershipTransfer().Error(); err != nil {
				c.log.Warn("leadership transfer before shutdown failed", "error", err)
			} else {
				c.log.Info("leadership transferred before shutdown")
			}
		}
	}
	c.batcher.close()
	c.fsm.Close() // a batch waiting for disk space gives up: raft waits for it
	var errs []error
	if err := c.raft.Shutdown().Error(); err != nil {
		errs = append(errs, fmt.Errorf("raft shutdown: %w", err))
	}
	if err := c.transport.Close(); err != nil {
		errs = append(errs, fmt.Errorf("close raft transport: %w", err))
	}
	if err := c.wal.Close(); err != nil {
		errs = append(errs, fmt.Errorf("close raft log: %w", err))
	}
	return errors.Join(errs...)
}

// streamLayer is raft's transport over a listener the caller bound, so tests
// and the node can use port 0 and read the port back.
type streamLayer struct {
	net.Listener
	advertise net.Addr
}

func (s *streamLayer) Dial(addr raft.ServerAddress, timeout time.Duration) (net.Conn, error) {
	return (&net.Dialer{Timeout: timeout}).Dial("tcp", string(addr))
}

func (s *streamLayer) Addr() net.Addr { return s.advertise }
