// Package mwi lights the message-waiting lamps of the phones registered
// on this node (RFC 3842, issue 12): it answers SUBSCRIBE Event:
// message-summary (digest-authenticated like an INVITE, to the caller's
// own AOR or extension), keeps the subscriptions in memory and NOTIFYs
// each one at once and again whenever its mailbox changes, until it
// expires (terminated;reason=timeout) or is ended (Expires: 0). Phones
// that do not subscribe get an unsolicited NOTIFY (no subscription) when
// their mailbox changes, and when they register while it holds messages.
//
// Every node notifies only the phones whose flow it holds: its own
// subscriptions and its own location service's bindings. A change made on
// another node reaches this one with the replicated message (the node
// calls Changed for it), so no NOTIFY crosses nodes; the same change seen
// twice (written here, then applied from Raft) is sent once, because a
// target is only notified when its summary differs from the last one it
// got. Subscriptions are not replicated: after a failover the phone's
// refresh gets 481 and it subscribes again on the node it reached.
//
// It must never write the store, never keep a mailbox's counts beside the
// store (Counts is asked at every change) and never send to a binding
// another node holds.
package mwi
