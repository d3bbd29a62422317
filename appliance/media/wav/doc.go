// Package wav owns the WAV (RIFF) files the media engine plays and
// records: it parses 8 kHz mono files holding 16-bit linear PCM, G.711
// µ-law or G.711 A-law, and writes 8 kHz mono 16-bit PCM. Anything else
// (another rate, stereo, 8-bit or float PCM, compressed formats) is an
// error that says what the file holds and what is wanted.
//
// It must never resample, mix or panic on a malformed file: files come
// from the cloud and from users, and a bad one is reported, not played.
package wav
