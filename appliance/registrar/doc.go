// Package registrar will own SIP registration: REGISTER with digest
// authentication against the users' HA1 values in the store, bindings (the
// location service) on the presence plane, OPTIONS and keep-alives. It must
// never write the replicated tables: bindings are local-first and shared
// through the cluster. Not built yet: issue 3.
package registrar
