// Package dnssrv will answer DNS SRV, NAPTR and A/AAAA for the phones'
// domain (miekg/dns), naming only healthy nodes, a site's own first. It
// reads cluster health; it never writes state. Not built yet: issue 9.
package dnssrv
