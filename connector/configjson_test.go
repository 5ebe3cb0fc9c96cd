package connector

import (
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"testing"
)

// TestTemplateListPaths checks that TemplateList reports under the list's own name and keeps
// what passed.
func TestTemplateListPaths(t *testing.T) {
	raw := json.RawMessage(`{"tpl":[{"usageType":"SignIn","content":"{{code}}"},{"usageType":"SignIn","content":"x {{code}}"},` +
		`{"usageType":"Nope","content":"no code","locale":"??","extra":1},7]}`)
	ts, vs := ReadConfig(raw, func(r *ConfigReader, raw json.RawMessage) *[]Template {
		fields, ok := r.Object(raw, "", "a JSON object")
		if !ok {
			return nil
		}
		ts := r.TemplateList(fields, "tpl", TemplateRules{MaxLength: 10, TooLong: "is %d long, over %d"})
		return &ts
	})
	if ts != nil {
		t.Errorf("templates %v returned with violations", *ts)
	}
	var fields []string
	for _, v := range vs {
		fields = append(fields, v.Field)
	}
	want := []string{"tpl[1]", "tpl[2].usageType", "tpl[2].content", "tpl[2].locale", "tpl[2].extra", "tpl[3]"}
	if !slices.Equal(fields, want) {
		t.Errorf("violation fields %q, want %q", fields, want)
	}
	if !strings.Contains(vs[0].Description, "repeats tpl[0]") {
		t.Errorf("duplicate described as %q", vs[0].Description)
	}
}

// TestTemplateListCodeOrLink checks that every template carries {{code}}, {{link}} or both.
func TestTemplateListCodeOrLink(t *testing.T) {
	tests := []struct {
		content string
		ok      bool
	}{
		{"Your code is {{code}}", true},
		{"Join the organization: {{ link }}", true},
		{"{{link}} or enter {{code}}", true},
		{"Your code is ready", false},
		{"Join {{links}} {{invitation.link}} {link}", false},
	}
	for _, tt := range tests {
		raw, _ := json.Marshal(map[string]any{"templates": []any{map[string]any{"usageType": "Generic", "content": tt.content}}})
		_, vs := ReadConfig(raw, func(r *ConfigReader, raw json.RawMessage) *[]Template {
			fields, _ := r.Object(raw, "", "a JSON object")
			ts := r.TemplateList(fields, "templates", TemplateRules{MaxLength: 1600, TooLong: "is %d long, over %d"})
			return &ts
		})
		switch {
		case tt.ok && len(vs) > 0:
			t.Errorf("%q: violations %v, want none", tt.content, vs)
		case !tt.ok && (len(vs) != 1 || vs[0].Field != "templates[0].content" ||
			!strings.HasPrefix(vs[0].Description, "contains neither {{code}} nor {{link}}")):
			t.Errorf("%q: violations %v, want templates[0].content containing neither {{code}} nor {{link}}", tt.content, vs)
		}
	}
}

// TestLoadForSend checks the errors a Send gets for a missing or invalid configuration.
func TestLoadForSend(t *testing.T) {
	c := NewConfigCache[int](0, 0)
	prep := func(raw []byte) (int, []Violation) {
		if string(raw) == "bad" {
			return 0, []Violation{{Description: "is bad"}, {Field: "x", Description: "is worse"}}
		}
		return len(raw), nil
	}
	var ce *Error
	for _, cfg := range []string{"", " null "} {
		if _, err := c.LoadForSend([]byte(cfg), "test", prep); !errors.As(err, &ce) || ce.Reason != ReasonConfigMissing {
			t.Errorf("%q: %v", cfg, err)
		}
	}
	if _, err := c.LoadForSend([]byte(" bad "), "test", prep); !errors.As(err, &ce) || ce.Reason != ReasonInvalidConfig ||
		ce.Message != "the test configuration has 2 problems; first: the test configuration is bad" || len(ce.Violations) != 2 {
		t.Errorf("invalid: %v", err)
	}
	if v, err := c.LoadForSend([]byte(" ok "), "test", prep); v != 2 || err != nil {
		t.Errorf("valid: %v, %v", v, err)
	}
}
