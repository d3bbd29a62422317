// Package pcap reads and writes classic libpcap capture files of UDP over
// IPv4 over Ethernet (or Linux cooked capture, when reading): enough for
// the media tests to replay captured RTP and to write captures that SIPp's
// pcap_play and Wireshark open.
//
// It must never be used on the call path: it is a test and tooling aid,
// and it does not reassemble fragments, read IPv6, pcapng or VLAN tags.
package pcap
