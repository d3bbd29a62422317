// Package sdg will own Survivability Distribution Groups at run time: the
// pure routing engine for user, group, IVR, number and SDG routes and the
// group strategies. Snapshot-time validation of routes (types, loops,
// nesting) lives in package account. Not built yet: issue 6.
package sdg
