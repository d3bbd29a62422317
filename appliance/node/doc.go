// Package node wires one Outpost node together and owns its lifecycle: the
// order things start and stop in, the listeners it binds, the admin token,
// joining a cluster and announcing its addresses, the bootstrap snapshot,
// and what it tells systemd (READY only once the store is open, a Raft leader
// is known and every listener is up; WATCHDOG while it is healthy; STATUS;
// STOPPING on the way down). It holds no state of its own beyond that and
// never writes the store: the cluster's FSM does.
package node
