package certfile

import "crypto/tls"

// AEADSuites are the TLS 1.2 cipher suites the servers offer: ECDHE key
// exchange (forward secrecy) with AES-GCM or ChaCha20-Poly1305. TLS 1.3's
// suites are fixed by Go and all AEAD.
var AEADSuites = []uint16{
	tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
	tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
	tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
	tls.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
	tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
	tls.TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
}

// CBCSuites are the TLS 1.2 ECDHE AES-CBC suites with a SHA-1 MAC, offered
// beside AEADSuites only where old clients need them (sip.tls_cbc_ciphers).
// Go refuses to negotiate the SHA-256 MAC variants (tls.InsecureCipherSuites:
// their constant-time decryption is not implemented), so they are not here.
var CBCSuites = []uint16{
	tls.TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA,
	tls.TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA,
	tls.TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA,
	tls.TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA,
}

// ServerSuites is the TLS 1.2 suite list of a server: AEADSuites, then
// CBCSuites when cbc is set.
func ServerSuites(cbc bool) []uint16 {
	s := append([]uint16(nil), AEADSuites...)
	if cbc {
		s = append(s, CBCSuites...)
	}
	return s
}
