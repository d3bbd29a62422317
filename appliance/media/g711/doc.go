// Package g711 owns the ITU-T G.711 codecs: µ-law (PCMU, RTP payload type
// 0) and A-law (PCMA, payload type 8), converting between 16-bit linear
// samples and one byte per sample, 8000 samples a second. The quantisers
// follow the ITU-T G.191 reference implementation bit for bit. Decoding
// is the same everywhere; encoders derived from the old Sun code (sox,
// many softphones) round negative samples by their two's rather than
// one's complement, so at each negative interval boundary they pick the
// neighbouring code for a few inputs (2 for µ-law, 4 for A-law, measured
// against sox over all 65536).
//
// It must never allocate on the per-packet path, hold state, or know about
// RTP beyond the payload type numbers: packetising, pacing and files
// belong to the player and wav packages.
package g711
