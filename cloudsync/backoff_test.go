package cloudsync

import (
	"testing"
	"time"
)

func constRand(v float64) func() float64 { return func() float64 { return v } }

func TestBackoffDoublesToTheMaximum(t *testing.T) {
	b := NewBackoff(constRand(0.5)) // no jitter
	want := []time.Duration{1, 2, 4, 8, 16, 32, 60, 60, 60}
	for i, w := range want {
		if got := b.Next(); got != w*time.Second {
			t.Errorf("delay %d = %v, want %v", i, got, w*time.Second)
		}
	}
	b.Reset()
	if got := b.Next(); got != time.Second {
		t.Errorf("after Reset: %v, want 1s", got)
	}
}

func TestBackoffJitter(t *testing.T) {
	tests := []struct {
		rnd  float64
		want time.Duration
	}{
		{0, 800 * time.Millisecond},     // -20 %
		{0.5, time.Second},              // none
		{0.75, 1100 * time.Millisecond}, // +10 %
		{0.999999, 1199999600 * time.Nanosecond},
	}
	for _, tt := range tests {
		b := NewBackoff(constRand(tt.rnd))
		if got := b.Next(); got != tt.want {
			t.Errorf("rand %v: %v, want %v", tt.rnd, got, tt.want)
		}
	}
	b := NewBackoff(constRand(0))
	for range 10 {
		b.Next()
	}
	if got := b.Next(); got != 48*time.Second {
		t.Errorf("the maximum -20 %%: %v, want 48s", got)
	}
}

func TestBackoffDefaultRandomStaysWithinJitter(t *testing.T) {
	b := NewBackoff(nil)
	for i := range 200 {
		d := b.Next()
		base := min(time.Second<<min(i, 6), time.Minute)
		lo, hi := time.Duration(float64(base)*0.8), time.Duration(float64(base)*1.2)
		if d < lo || d > hi {
			t.Fatalf("delay %d = %v, outside [%v, %v]", i, d, lo, hi)
		}
	}
}

func TestBackoffSlowest(t *testing.T) {
	b := NewBackoff(constRand(0.5))
	if got := b.Slowest(); got != time.Minute {
		t.Errorf("Slowest = %v, want 1m", got)
	}
	if got := b.Next(); got != 2*time.Second {
		t.Errorf("Next after Slowest = %v, want 2s (one failure counted)", got)
	}
}
