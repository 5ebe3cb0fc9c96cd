package connector

import "testing"

func TestValidLocale(t *testing.T) {
	cases := []struct {
		tag  string
		want bool
	}{
		{"en", true},
		{"fr-CA", true},
		{"zh-Hant-TW", true},
		{"PT-br", true},
		{"pt_BR", false},
		{"es-419", true},
		{"de-1996", true},
		{"", false},
		{"und", false},
		{"root", false},
		{"french!", false},
		{"english", false},
		{"en-", false},
		{"xx", false},      // well formed, but no such language
		{"en-Abcd", false}, // no such script
		{"zz-CA", false},
	}
	for _, tc := range cases {
		if got := ValidLocale(tc.tag); got != tc.want {
			t.Errorf("ValidLocale(%q) = %t, want %t", tc.tag, got, tc.want)
		}
	}
}
