// Package e2e holds the end-to-end tier: tests that build the real binaries
// and run them as separate processes on loopback (later also SIPp, baresip,
// Chromium and network namespaces). Nothing here is imported by the product.
package e2e
