package connector

import (
	"errors"
	"testing"
)

func TestSelectTemplate(t *testing.T) {
	ts := []Template{
		{UsageType: UsageSignIn, Content: "sign-in default {{code}}"},
		{UsageType: UsageSignIn, Locale: "fr", Content: "connexion {{code}}"},
		{UsageType: UsageSignIn, Locale: "pt-BR", Content: "entrar {{code}}"},
		{UsageType: UsageGeneric, Content: "generic {{code}}"},
		{UsageType: UsageGeneric, Locale: "de", Content: "allgemein {{code}}"},
		{UsageType: UsageRegister, Locale: "ja", Content: "登録 {{code}}"},
	}
	tests := []struct {
		name   string
		usage  UsageType
		locale string
		want   string
	}{
		{"exact usage, no locale", UsageSignIn, "", "sign-in default {{code}}"},
		{"exact locale", UsageSignIn, "fr", "connexion {{code}}"},
		{"case-insensitive locale", UsageSignIn, "PT-br", "entrar {{code}}"},
		{"region falls back to language", UsageSignIn, "fr-CA", "connexion {{code}}"},
		{"language matches a regional template", UsageSignIn, "pt", "entrar {{code}}"},
		{"underscore tag", UsageSignIn, "fr_BE", "connexion {{code}}"},
		{"unknown locale falls back to no locale", UsageSignIn, "es", "sign-in default {{code}}"},
		{"missing usage falls back to Generic", UsageForgotPassword, "", "generic {{code}}"},
		{"generic with locale", UsageBindMfa, "de-AT", "allgemein {{code}}"},
		{"only localised templates: first", UsageRegister, "en", "登録 {{code}}"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := SelectTemplate(ts, tt.usage, tt.locale)
			if err != nil {
				t.Fatal(err)
			}
			if got.Content != tt.want {
				t.Errorf("got %q, want %q", got.Content, tt.want)
			}
		})
	}
}

func TestSelectTemplateNotFound(t *testing.T) {
	_, err := SelectTemplate([]Template{{UsageType: UsageSignIn, Content: "x"}}, UsageRegister, "")
	if ReasonOf(err) != ReasonTemplateNotFound {
		t.Fatalf("err = %v, want TEMPLATE_NOT_FOUND", err)
	}
	if !errors.Is(err, &Error{Reason: ReasonTemplateNotFound}) {
		t.Fatalf("errors.Is does not match the reason")
	}
	if _, err := SelectTemplate(nil, UsageGeneric, ""); ReasonOf(err) != ReasonTemplateNotFound {
		t.Fatalf("empty list: err = %v", err)
	}
}

func TestRender(t *testing.T) {
	p := Payload{
		Code:   "123456",
		Locale: "fr",
		Variables: map[string]any{
			"application": map[string]any{"name": "Acme", "id": 42.0},
			"minutes":     10.0,
			"flag":        true,
			"list":        []any{"a"},
			"authToken":   nil,
		},
	}
	tests := []struct{ in, want string }{
		{"Your code is {{code}}", "Your code is 123456"},
		{"Your code is {{ code }}.", "Your code is 123456."},
		{"{{code}}{{code}}", "123456123456"},
		{"[{{locale}}] {{application.name}} #{{ application.id }}", "[fr] Acme #42"},
		{"valid {{minutes}} min {{flag}}", "valid 10 min true"},
		{"missing {{nope}} {{application.nope}} {{code.deeper}}", "missing   "},
		{"object {{application}} list {{list}}", "object  list "},
		{"secrets are not reachable {{authToken}} {{config.authToken}}", "secrets are not reachable  "},
		{"not a placeholder {code} {{ }} {{a b}}", "not a placeholder {code} {{ }} {{a b}}"},
		{"no recursion", "no recursion"},
	}
	for _, tt := range tests {
		if got := Render(tt.in, p); got != tt.want {
			t.Errorf("Render(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
	// A code that itself looks like a placeholder is not expanded again.
	if got := Render("{{code}}", Payload{Code: "{{locale}}", Locale: "fr"}); got != "{{locale}}" {
		t.Errorf("rendered the code recursively: %q", got)
	}
}

func TestHasCodePlaceholder(t *testing.T) {
	for in, want := range map[string]bool{
		"code {{code}}": true, "code {{ code }}": true, "{{codes}}": false, "no code": false, "{{ a.code }}": false,
	} {
		if got := HasCodePlaceholder(in); got != want {
			t.Errorf("HasCodePlaceholder(%q) = %v", in, got)
		}
	}
}
