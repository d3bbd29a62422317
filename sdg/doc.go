// Package sdg owns Survivability Distribution Groups at run time: the pure
// routing engine that walks a call through user, group, ivr, number and sdg
// routes (shared/CONTRACT.md, "A route is one of") and the conference route
// (an extension: the dial-in to a live call), rings group members by
// strategy, decides IVR menus, follows no_answer and no_input, protects
// against loops and nesting deeper than account.MaxSDGDepth, and records the
// call's path.
//
// A Call is an event-driven state machine: Start returns the first Action,
// and Next turns each Event the SIP layer reports into the next Action
// (Ring, Menu, Dial, DialIn, then Connected or Fail). Rotating groups' state is a
// plain value (Rotation) the caller stores and replicates.
//
// It must never do I/O, start goroutines, read the clock or use SIP types:
// timers are run by the caller from the durations in the actions, and
// presence, configuration and rotation state come in through the small
// interfaces in env.go. Snapshot-time validation of routes lives in package
// account; this package still survives bad graphs at run time.
package sdg
