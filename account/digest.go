package account

import (
	"crypto/md5"
	"crypto/sha256"
	"encoding/hex"
)

// Digest algorithms, as RFC 7616 names them in the algorithm parameter.
const (
	DigestMD5    = "MD5"
	DigestSHA256 = "SHA-256"
)

// HA1 returns the hex digest H(username:realm:password) for alg, DigestMD5
// or DigestSHA256: the form users[].sip stores credentials in. It returns ""
// for any other algorithm.
func HA1(alg, username, realm, password string) string {
	in := []byte(username + ":" + realm + ":" + password)
	switch alg {
	case DigestMD5:
		sum := md5.Sum(in)
		return hex.EncodeToString(sum[:])
	case DigestSHA256:
		sum := sha256.Sum256(in)
		return hex.EncodeToString(sum[:])
	}
	return ""
}
