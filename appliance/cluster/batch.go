package cluster

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"time"
)

// CmdBatch carries many small commands in one Raft entry: one append, one
// fsync, one SQLite transaction for all of them. Each inner command still
// runs in its own savepoint and gets its own ApplyResult.
const CmdBatch CommandType = 5

// Batch limits: at most maxBatchCommands commands or maxBatchBytes per entry,
// and at most maxInFlight entries proposed and not yet applied.
const (
	maxBatchCommands = 1024
	maxBatchBytes    = 1 << 20
	maxInFlight      = 8
)

// encodeBatch packs entries as uvarint length + entry, in order.
func encodeBatch(entries [][]byte) []byte {
	size := 2
	for _, e := range entries {
		size += binary.MaxVarintLen32 + len(e)
	}
	out := make([]byte, 0, size)
	out = append(out, byte(CmdBatch), commandVersion)
	for _, e := range entries {
		out = binary.AppendUvarint(out, uint64(len(e)))
		out = append(out, e...)
	}
	return out
}

// decodeBatch splits a batch payload into its entries.
func decodeBatch(payload []byte) ([][]byte, error) {
	var out [][]byte
	for len(payload) > 0 {
		n, k := binary.Uvarint(payload)
		if k <= 0 || n > uint64(len(payload)-k) {
			return nil, fmt.Errorf("%w: batch entry %d is truncated", ErrUnknownCommand, len(out))
		}
		out = append(out, payload[k:k+int(n)])
		payload = payload[k+int(n):]
	}
	return out, nil
}

type pending struct {
	cmd  []byte
	done chan batchAnswer
}

type batchAnswer struct {
	res ApplyResult
	err error
}

// Batcher coalesces small commands proposed concurrently into CmdBatch
// entries. While entries are in flight, new commands queue up and go out
// together in the next one, so batches grow with load and a lone command
// waits for nothing.
type Batcher struct {
	c     *Cluster
	queue chan pending
	slots chan struct{}
	stop  chan struct{}
	done  chan struct{}
}

func newBatcher(c *Cluster) *Batcher {
	b := &Batcher{
		c:     c,
		queue: make(chan pending, 4*maxBatchCommands),
		slots: make(chan struct{}, maxInFlight),
		stop:  make(chan struct{}),
		done:  make(chan struct{}),
	}
	go b.loop()
	return b
}

// errBatcherStopped answers commands queued when the node shuts down.
var errBatcherStopped = errors.New("cluster is shutting down")

// Apply queues one small command (not a snapshot, not a batch) and waits for
// its result. Like Cluster.Apply it returns ErrNotLeader on a follower.
func (b *Batcher) Apply(ctx context.Context, cmd []byte) (ApplyResult, error) {
	if !b.c.IsLeader() {
		return ApplyResult{}, ErrNotLeader
	}
	p := pending{cmd: cmd, done: make(chan batchAnswer, 1)}
	select {
	case b.queue <- p:
	case <-ctx.Done():
		return ApplyResult{}, ctx.Err()
	case <-b.stop:
		return ApplyResult{}, errBatcherStopped
	}
	select {
	case a := <-p.done:
		return a.res, a.err
	case <-ctx.Done():
		return ApplyResult{}, ctx.Err()
	}
}

func (b *Batcher) loop() {
	defer close(b.done)
	for {
		var first pending
		select {
		case first = <-b.queue:
		case <-b.stop:
			b.drain()
			return
		}
		select {
		case b.slots <- struct{}{}:
		case <-b.stop:
			first.done <- batchAnswer{err: errBatcherStopped}
			b.drain()
			return
		}
		batch := []pending{first}
		size := len(first.cmd)
	fill:
		for len(batch) < maxBatchCommands && size < maxBatchBytes {
			select {
			case p := <-b.queue:
				batch = append(batch, p)
				size += len(p.cmd)
			default:
				break fill
			}
		}
		b.propose(batch)
	}
}

// propose sends one entry and answers its commands when it is applied.
func (b *Batcher) propose(batch []pending) {
	cmds := make([][]byte, len(batch))
	for i, p := range batch {
		cmds[i] = p.cmd
	}
	start := time.Now()
	f := b.c.raft.Apply(encodeBatch(cmds), 30*time.Second)
	go func() {
		defer func() { <-b.slots }()
		err := f.Error()
		b.c.applyLatency.Observe(time.Since(start).Seconds())
		if err != nil {
			err = notLeader(err)
			for _, p := range batch {
				p.done <- batchAnswer{err: err}
			}
			return
		}
		results, _ := f.Response().(ApplyResult)
		for i, p := range batch {
			switch {
			case results.Err != nil:
				p.done <- batchAnswer{res: results}
			case i < len(results.Batch):
				p.done <- batchAnswer{res: results.Batch[i]}
			default:
				p.done <- batchAnswer{err: fmt.Errorf("raft apply: batch answer has %d results for %d commands", len(results.Batch), len(batch))}
			}
		}
	}()
}

func (b *Batcher) drain() {
	for {
		select {
		case p := <-b.queue:
			p.done <- batchAnswer{err: errBatcherStopped}
		default:
			return
		}
	}
}

func (b *Batcher) close() {
	close(b.stop)
	<-b.done
}
