// Package calls owns the call model: the dialling decision (dialplan.go,
// pure: no sockets, no clock, no sipgo types — given what was dialled and a
// read-only view of the configuration it says where the call goes), and, to
// come with the rest of issue 3, legs, bridges, the B2BUA adapters that turn
// SIP into dialling requests and decisions into SIP, transfers, hold, and the
// call records of the outage journal.
package calls
