package connector

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
)

func TestMessageCheck(t *testing.T) {
	ok := func() Message {
		return Message{To: "+1 500 555 0006", UsageType: UsageSignIn, Payload: Payload{Code: "123456"}}
	}
	tests := []struct {
		name   string
		edit   func(*Message)
		reason Reason
		fields []string
	}{
		{"valid", func(*Message) {}, "", nil},
		{"empty to", func(m *Message) { m.To = "" }, ReasonInvalidPhoneNumber, []string{"to"}},
		{"malformed to", func(m *Message) { m.To = "call me" }, ReasonInvalidPhoneNumber, []string{"to"}},
		{"no usage", func(m *Message) { m.UsageType = "" }, ReasonInvalidRequest, []string{"usage_type"}},
		{"unknown usage", func(m *Message) { m.UsageType = "Login" }, ReasonInvalidRequest, []string{"usage_type"}},
		{"empty code", func(m *Message) { m.Payload.Code = "" }, ReasonInvalidRequest, []string{"payload.code"}},
		{"long code", func(m *Message) { m.Payload.Code = strings.Repeat("1", 65) }, ReasonInvalidRequest, []string{"payload.code"}},
		{"bad utf8 code", func(m *Message) { m.Payload.Code = "\xff" }, ReasonInvalidRequest, []string{"payload.code"}},
		{"everything", func(m *Message) { *m = Message{} }, ReasonInvalidRequest, []string{"to", "usage_type", "payload.code"}},
		{"control character in code", func(m *Message) { m.Payload.Code = "12\x0734" }, ReasonInvalidRequest, []string{"payload.code"}},
		{"line break in code", func(m *Message) { m.Payload.Code = "1234\nvisit evil.example" }, ReasonInvalidRequest, []string{"payload.code"}},
		{"zero-width space in code", func(m *Message) { m.Payload.Code = "12\u200b34" }, ReasonInvalidRequest, []string{"payload.code"}},
		{"code with spaces and letters", func(m *Message) { m.Payload.Code = "AB 12-Ç" }, "", nil},
		{"link only", func(m *Message) { m.Payload.Code, m.Payload.Link = "", "https://example.com/invite?token=abc" }, "", nil},
		{"code and link", func(m *Message) { m.Payload.Link = "https://example.com/invite" }, "", nil},
		{"link at the limit", func(m *Message) { m.Payload.Link = "https://example.com/" + strings.Repeat("a", MaxLinkLength-20) }, "", nil},
		{"link with port, path and fragment", func(m *Message) { m.Payload.Link = "HTTPS://Example.com:8443/a/b%20c?x=1#y" }, "", nil},
		{"link with a non-ASCII path", func(m *Message) { m.Payload.Link = "https://example.com/einladung/ä" }, "", nil},
		{"link over the limit", func(m *Message) { m.Payload.Link = "https://example.com/" + strings.Repeat("a", MaxLinkLength-19) }, ReasonInvalidRequest, []string{"payload.link"}},
		{"link over http", func(m *Message) { m.Payload.Link = "http://example.com/invite" }, ReasonInvalidRequest, []string{"payload.link"}},
		{"link without scheme", func(m *Message) { m.Payload.Link = "example.com/invite" }, ReasonInvalidRequest, []string{"payload.link"}},
		{"relative link", func(m *Message) { m.Payload.Link = "/invite?token=abc" }, ReasonInvalidRequest, []string{"payload.link"}},
		{"opaque link", func(m *Message) { m.Payload.Link = "https:example.com" }, ReasonInvalidRequest, []string{"payload.link"}},
		{"link without host", func(m *Message) { m.Payload.Link = "https:///invite" }, ReasonInvalidRequest, []string{"payload.link"}},
		{"link with only a port", func(m *Message) { m.Payload.Link = "https://:443/invite" }, ReasonInvalidRequest, []string{"payload.link"}},
		{"javascript link", func(m *Message) { m.Payload.Link = "javascript:alert(1)" }, ReasonInvalidRequest, []string{"payload.link"}},
		{"link with user info", func(m *Message) { m.Payload.Link = "https://bank.example@evil.example/" }, ReasonInvalidRequest, []string{"payload.link"}},
		{"link with a space", func(m *Message) { m.Payload.Link = "https://example.com/a b" }, ReasonInvalidRequest, []string{"payload.link"}},
		{"link with a line break", func(m *Message) { m.Payload.Link = "https://example.com/\nvisit evil.example" }, ReasonInvalidRequest, []string{"payload.link"}},
		{"link with a zero-width space", func(m *Message) { m.Payload.Link = "https://exam\u200bple.com/" }, ReasonInvalidRequest, []string{"payload.link"}},
		{"link not UTF-8", func(m *Message) { m.Payload.Link = "https://example.com/\xff" }, ReasonInvalidRequest, []string{"payload.link"}},
		{"link bad, code missing", func(m *Message) { m.Payload.Code, m.Payload.Link = "", "ftp://example.com" }, ReasonInvalidRequest, []string{"payload.link"}},
		{"neither code nor link", func(m *Message) { m.Payload.Code = "" }, ReasonInvalidRequest, []string{"payload.code"}},
		{"locales", func(m *Message) { m.Payload.Locales = []string{"fr-CA", "fr", "en_US", "x-private"} }, "", nil},
		{"locales at the limit", func(m *Message) { m.Payload.Locales = slices.Repeat([]string{"de"}, MaxLocales) }, "", nil},
		{"too many locales", func(m *Message) { m.Payload.Locales = slices.Repeat([]string{"de"}, MaxLocales+1) }, ReasonInvalidRequest, []string{"payload.ui_locales"}},
		{"empty locale entry", func(m *Message) { m.Payload.Locales = []string{"fr", ""} }, ReasonInvalidRequest, []string{"payload.ui_locales[1]"}},
		{"long locale entry", func(m *Message) { m.Payload.Locales = []string{strings.Repeat("a", MaxLocaleLength+1)} }, ReasonInvalidRequest, []string{"payload.ui_locales[0]"}},
		{"locale entry with braces", func(m *Message) { m.Payload.Locales = []string{"de", "{{authToken}}", "fr CA"} }, ReasonInvalidRequest, []string{"payload.ui_locales[1]", "payload.ui_locales[2]"}},
		{"long locale", func(m *Message) { m.Payload.Locale = strings.Repeat("a", 36) }, ReasonInvalidRequest, []string{"payload.locale"}},
		{"locale with braces", func(m *Message) { m.Payload.Locale = "{{authToken}}" }, ReasonInvalidRequest, []string{"payload.locale"}},
		{"locale with underscore", func(m *Message) { m.Payload.Locale = "zh_Hant_TW" }, "", nil},
		{"variables at the limits", func(m *Message) {
			m.Payload.Variables = map[string]any{"a": strings.Repeat("x", MaxVariableStringSize), "n": 1.5, "b": true, "z": nil,
				"l": []any{"x", map[string]any{"k": "v"}}, "d": nest(MaxVariablesDepth - 1)}
		}, "", nil},
		{"long variable", func(m *Message) {
			m.Payload.Variables = map[string]any{"app": map[string]any{"name": strings.Repeat("x", MaxVariableStringSize+1)}}
		}, ReasonInvalidRequest, []string{"payload.variables.app.name"}},
		{"long variable in a list", func(m *Message) {
			m.Payload.Variables = map[string]any{"l": []any{"ok", strings.Repeat("x", MaxVariableStringSize+1)}}
		}, ReasonInvalidRequest, []string{"payload.variables.l[1]"}},
		{"long key", func(m *Message) {
			m.Payload.Variables = map[string]any{strings.Repeat("k", MaxVariableStringSize+1): "v"}
		}, ReasonInvalidRequest, []string{"payload.variables"}},
		{"odd key hides the path", func(m *Message) {
			m.Payload.Variables = map[string]any{"a b": strings.Repeat("x", MaxVariableStringSize+1)}
		}, ReasonInvalidRequest, []string{"payload.variables"}},
		{"bad utf8 variable", func(m *Message) { m.Payload.Variables = map[string]any{"v": "\xff"} }, ReasonInvalidRequest, []string{"payload.variables.v"}},
		{"too deep", func(m *Message) { m.Payload.Variables = map[string]any{"d": nest(MaxVariablesDepth)} }, ReasonInvalidRequest, []string{"payload.variables"}},
		{"far too deep", func(m *Message) { m.Payload.Variables = map[string]any{"d": nest(5000)} }, ReasonInvalidRequest, []string{"payload.variables"}},
		{"too big", func(m *Message) {
			vars := map[string]any{}
			for i := range 10 {
				vars[fmt.Sprint("k", i)] = strings.Repeat("x", 1000)
			}
			m.Payload.Variables = vars
		}, ReasonInvalidRequest, []string{"payload.variables"}},
		{"many long strings are summed up", func(m *Message) {
			vars := map[string]any{}
			for i := range 8 {
				vars[fmt.Sprint("k", i)] = strings.Repeat("x", MaxVariableStringSize+1)
			}
			m.Payload.Variables = vars
		}, ReasonInvalidRequest, nil},
		{"not JSON", func(m *Message) { m.Payload.Variables = map[string]any{"f": func() {}} }, ReasonInvalidRequest, []string{"payload.variables"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := ok()
			tt.edit(&m)
			err := m.Check()
			if tt.reason == "" {
				if err != nil || m.To != "+15005550006" {
					t.Fatalf("Check() = %v, To = %q", err, m.To)
				}
				return
			}
			var e *Error
			if !errors.As(err, &e) || e.Reason != tt.reason {
				t.Fatalf("Check() = %v, want reason %s", err, tt.reason)
			}
			var got []string
			for _, v := range e.Violations {
				got = append(got, v.Field)
			}
			if tt.fields == nil {
				return
			}
			if strings.Join(got, ",") != strings.Join(tt.fields, ",") {
				t.Errorf("fields = %v, want %v", got, tt.fields)
			}
		})
	}
}

func TestViolationsError(t *testing.T) {
	to := Violation{"to", "is required"}
	whole := Violation{"", "is not valid JSON"}
	tests := []struct {
		name    string
		subject string
		vs      []Violation
		want    string
	}{
		{"one", RequestSubject, []Violation{to}, "to is required"},
		{"several", RequestSubject, []Violation{to, {"usage_type", "is required"}, {"payload.code", "is required"}},
			"the request has 3 problems; first: to is required"},
		{"the subject as a whole", "the Twilio configuration", []Violation{whole}, "the Twilio configuration is not valid JSON"},
		{"several, the first of the whole", "the Twilio configuration", []Violation{whole, to},
			"the Twilio configuration has 2 problems; first: the Twilio configuration is not valid JSON"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := ViolationsError(ReasonInvalidConfig, tt.subject, tt.vs)
			if e.Reason != ReasonInvalidConfig || e.Message != tt.want || len(e.Violations) != len(tt.vs) {
				t.Fatalf("ViolationsError = %+v, want message %q and %d violations", e, tt.want, len(tt.vs))
			}
		})
	}
}

func TestErrorWrapping(t *testing.T) {
	cause := errors.New("dial tcp: refused")
	err := error(&Error{Reason: ReasonProviderUnavailable, Message: "Twilio is unreachable", Provider: "twilio", ProviderCode: "1", Err: cause})
	if !errors.Is(err, cause) {
		t.Error("cause not reachable through Unwrap")
	}
	if ReasonOf(err) != ReasonProviderUnavailable || ReasonOf(errors.New("x")) != ReasonInternal {
		t.Error("ReasonOf")
	}
	if !strings.Contains(err.Error(), "PROVIDER_UNAVAILABLE") || !strings.Contains(err.Error(), "refused") {
		t.Errorf("Error() = %q", err.Error())
	}
}

func TestUsageTypes(t *testing.T) {
	if len(UsageTypes()) != 9 {
		t.Fatalf("want the nine Logto usage types")
	}
	for _, u := range UsageTypes() {
		if !u.Valid() {
			t.Errorf("%s not valid", u)
		}
	}
	if UsageType("signin").Valid() {
		t.Error("usage types are case-sensitive, as in Logto")
	}
}

// nest returns an object holding levels objects, one inside the other: nest(1) is {"n": "x"}.
func nest(levels int) any {
	var v any = "x"
	for range levels {
		v = map[string]any{"n": v}
	}
	return v
}
