package calls

import "testing"

func TestFocusTarget(t *testing.T) {
	for _, tc := range []struct {
		user        string
		id          string
		factory, ok bool
	}{
		{"conference", "", true, true},
		{"Conference", "", true, true},
		{"conf-0b5e6c1a-1111-4222-8333-444455556666", "0b5e6c1a-1111-4222-8333-444455556666", false, true},
		{"conf-", "", false, false},
		{"conferences", "", false, false},
		{"1002", "", false, false},
		{"", "", false, false},
	} {
		id, factory, ok := focusTarget(tc.user)
		if id != tc.id || factory != tc.factory || ok != tc.ok {
			t.Errorf("focusTarget(%q) = %q, %v, %v; want %q, %v, %v", tc.user, id, factory, ok, tc.id, tc.factory, tc.ok)
		}
	}
}
