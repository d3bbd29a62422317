// Package registrar owns SIP registration: REGISTER with digest
// authentication against the users' HA1 values in the store, bindings (the
// location service) on the presence plane, admission per site (with a
// reserve for emergency and common-area users), OPTIONS, and failback
// (failback.go): sending phones still registered here back to the cloud
// once the mode is normal again (a short interval, NOTIFY check-sync or
// 503 with Retry-After, never to a user in a call).
//
// It must never write the replicated tables: bindings are local-first and
// shared through the cluster. It reads the mode and never changes it:
// registrations do not decide the mode, the leader's cloud probes do.
package registrar
