// Package sbc owns the decisions behind SIP trunks to the on-prem SBCs: trunk
// health from OPTIONS (health.go), RFC 3263 resolution of trunk hosts
// (resolve.go), trunk selection and the failover rule (select.go), channel
// accounting (channels.go), ELINs for emergency call-back (elin.go), caller ID
// and the PIDF-LO location body of emergency calls (emergency.go), and the
// toll-fraud policy (policy.go).
//
// It must never send or parse SIP: the B2BUA in appliance/calls owns sipgo and
// turns these decisions into messages (it supplies the OPTIONS sender as a
// Ping func). Selection, failover, ELIN choice, caller ID, PIDF-LO and policy
// are pure: no sockets, no clock (times are arguments), randomness through
// the Rand interface. Only Prober (a scheduler) and Resolver (DNS) do I/O. It
// never normalises dialled numbers either: calls.Resolve turns what was dialled
// into E.164 (or an emergency dial string) before anything here sees it. It
// never writes replicated tables: ELIN mappings go through the ELINStore the
// caller provides, which shares them on the presence plane.
//
// # Decisions where the issue was silent
//
//   - A trunk nobody has probed yet is "unknown" and usable, so a fresh node
//     can place calls at once. One answered OPTIONS makes it "up"; three
//     consecutive failures make it "down" (from unknown or up); two consecutive
//     successes bring it back up.
//   - An OPTIONS final answer 200-699 means alive, except 503 (the SBC says it
//     is out of service) and 408 (which most stacks synthesise on a timeout, so
//     it cannot be told apart from silence). Transport errors and timeouts fail.
//   - A trunk host's port is the fallback for A/AAAA, not an explicit URI port:
//     the snapshot requires a port, so following RFC 3263 §4.2 literally would
//     forbid NAPTR and SRV for every FQDN trunk.
//   - When the DNS server cannot be reached (a WAN outage is when this
//     appliance works), an expired answer is served for up to
//     ResolverOptions.ServeStale rather than failing the call.
//   - 503 fails over with or without Retry-After (the server asked not to be
//     retried; another trunk is a different server). After an 18x the callee
//     was alerted, so a normal call does not fail over any more; 487 (the
//     caller cancelled) never does. Emergency calls fail over on every final
//     failure except 487, alerted or not.
//   - Emergency calls use only their own site's trunks (PSAP routing depends
//     on where the trunk is), down trunks last.
//   - NANP is one zone except the independent Caribbean states that share +1
//     (JM, DO, BS, ...): they are the classic toll-fraud destinations and count
//     as their own countries. +1 900 (premium rate) needs AllowPremium.
//
// # Where the policy comes from
//
// Each site's optional "outbound" object in the snapshot (account.Outbound,
// documented in docs/sip.md, "Calls out"); SitePolicy turns it into a
// Policy, and a site without one gets DefaultPolicy.
package sbc
