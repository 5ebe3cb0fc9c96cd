package connector

import (
	"strings"
	"testing"
)

func TestNormalizePhone(t *testing.T) {
	tests := []struct {
		in, want string
		wantErr  bool
	}{
		{"+15005550006", "+15005550006", false},
		{"15005550006", "+15005550006", false},
		{"+1 (500) 555-0006", "+15005550006", false},
		{"  +44 20 7946 0958 ", "+442079460958", false},
		{"0033 6 12 34 56 78", "+33612345678", false},
		{"+33.6.12.34.56.78", "+33612345678", false},
		{"", "", true},
		{"+", "", true},
		{"abc", "", true},
		{"+1500555000a", "", true},
		{"0612345678", "", true},
		{"+123456", "", true},
		{"+1234567890123456", "", true},
		{"1+5005550006", "", true},
		{"+1\n5005550006", "", true},
		{"+1500\x00555006", "", true},
		{strings.Repeat("1", 100), "", true},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := NormalizePhone(tt.in)
			if tt.wantErr {
				if ReasonOf(err) != ReasonInvalidPhoneNumber {
					t.Fatalf("NormalizePhone(%q) = %q, %v; want INVALID_PHONE_NUMBER", tt.in, got, err)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("NormalizePhone(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
			}
		})
	}
}

func TestMaskPhone(t *testing.T) {
	tests := []struct{ in, want string }{
		{"", ""},
		{"+1234", "*****"},
		{"+14155550123", "+141******23"},
	}
	for _, tt := range tests {
		if got := MaskPhone(tt.in); got != tt.want {
			t.Errorf("MaskPhone(%q) = %q, want %q", tt.in, got, tt.want)
		}
		if len(tt.in) > 6 && strings.Contains(MaskPhone(tt.in), tt.in[4:len(tt.in)-2]) {
			t.Errorf("MaskPhone(%q) leaks the middle digits", tt.in)
		}
	}
}
