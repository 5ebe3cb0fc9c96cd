package logtobridge

import (
	"fmt"
	"slices"
	"testing"

	"github.com/sms-connector/sms-connector/connector"
)

// TestLocalesOf checks how Logto's uiLocales becomes the preference list: a string of tags or
// an array, repeated tags dropped, at most connector.MaxLocales kept.
func TestLocalesOf(t *testing.T) {
	many := make([]any, 0, 40)
	var want []string
	for i := range 40 {
		tag := fmt.Sprintf("x-%d", i)
		many = append(many, tag)
		if i < connector.MaxLocales {
			want = append(want, tag)
		}
	}
	tests := []struct {
		name string
		in   any
		want []string
		ok   bool
	}{
		{"absent", nil, nil, true},
		{"a string, as Logto sends it", "fr-CA  en\tde", []string{"fr-CA", "en", "de"}, true},
		{"an array", []any{"fr", "en"}, []string{"fr", "en"}, true},
		{"repeated tags, in any case", "fr en FR En de", []string{"fr", "en", "de"}, true},
		{"a long browser list", many, want, true},
		{"an array with a number", []any{"fr", 7.0}, nil, false},
		{"a number", 7.0, nil, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := localesOf(tt.in)
			if ok != tt.ok || !slices.Equal(got, tt.want) {
				t.Errorf("localesOf(%v) = %q, %v; want %q, %v", tt.in, got, ok, tt.want, tt.ok)
			}
		})
	}
}
