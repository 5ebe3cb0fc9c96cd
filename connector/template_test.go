package connector

import (
	"encoding/json"
	"errors"
	"regexp"
	"strings"
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

// placeholderRE is the regular expression Render and HasCodePlaceholder were first written
// with; the tests and FuzzRender hold the compiled implementation to it.
var placeholderRE = regexp.MustCompile(`\{\{\s*([A-Za-z0-9_\-]+(?:\.[A-Za-z0-9_\-]+)*)\s*\}\}`)

// renderRegexp is Render as it was written with placeholderRE.
func renderRegexp(content string, p Payload) string {
	return placeholderRE.ReplaceAllStringFunc(content, func(m string) string {
		name := placeholderRE.FindStringSubmatch(m)[1]
		switch name {
		case "code":
			return p.Code
		case "locale":
			return p.Locale
		}
		v, ok := lookup(p.Variables, strings.Split(name, "."))
		if !ok {
			return ""
		}
		return format(v)
	})
}

// hasCodeRegexp is HasCodePlaceholder as it was written with placeholderRE.
func hasCodeRegexp(content string) bool {
	for _, m := range placeholderRE.FindAllStringSubmatch(content, -1) {
		if m[1] == "code" {
			return true
		}
	}
	return false
}

func TestCompiledTemplateMatchesRegexp(t *testing.T) {
	p := Payload{
		Code:   "123456",
		Locale: "fr",
		Variables: map[string]any{
			"application": map[string]any{"name": "Acme", "id": 42.0, "n": json.Number("7")},
			"minutes":     10.0,
			"i":           3,
		},
	}
	for _, in := range []string{
		"", "plain", "{{code}}", "Your code is {{ code }}.", "{{{code}}}", "{{{{code}}}}", "{{code}", "{code}}",
		"{{ code", "{{}}", "{{ }}", "{{a b}}", "{{a.}}", "{{.a}}", "{{a..b}}", "{{a.b.}}", "{{ a-b_c.D9 }}",
		"{{\tcode\r\n}}", "{{\vcode}}", "{{code}}{{locale}}{{application.name}}{{application.id}}{{application.n}}{{i}}",
		"{{application}} {{minutes}} {{nope}} {{code.deeper}}", "\xff{{code}}\xfe", "}}{{code}}{{", "{{code}}}}",
		"{{ code }} {{code}} {{ code\t}} {{", "日本 {{code}} 語", strings.Repeat("{{code}} ", 20),
	} {
		want := renderRegexp(in, p)
		if got := Render(in, p); got != want {
			t.Errorf("Render(%q) = %q, regexp gives %q", in, got, want)
		}
		c := CompileTemplate(in)
		if got := c.Render(p); got != want {
			t.Errorf("CompileTemplate(%q).Render = %q, regexp gives %q", in, got, want)
		}
		if c.Content() != in {
			t.Errorf("Content() = %q, want %q", c.Content(), in)
		}
		if got, want := HasCodePlaceholder(in), hasCodeRegexp(in); got != want {
			t.Errorf("HasCodePlaceholder(%q) = %v, regexp says %v", in, got, want)
		}
	}
}

func TestCompiledTemplateAllocations(t *testing.T) {
	c := CompileTemplate("Your {{application.name}} code is {{ code }} ({{locale}}).")
	p := Payload{Code: "424242", Locale: "en", Variables: map[string]any{"application": map[string]any{"name": "Acme"}}}
	if got := c.Render(p); got != "Your Acme code is 424242 (en)." {
		t.Fatalf("Render = %q", got)
	}
	if n := testing.AllocsPerRun(100, func() { _ = c.Render(p) }); n > 1 {
		t.Errorf("Render allocates %v times per call, want at most 1 (the result)", n)
	}
	lit := CompileTemplate("no placeholder")
	if n := testing.AllocsPerRun(100, func() { _ = lit.Render(p) }); n != 0 {
		t.Errorf("Render of a literal template allocates %v times", n)
	}
}

func TestSelectTemplateIndexAllocations(t *testing.T) {
	ts := []Template{
		{UsageType: UsageSignIn, Content: "a {{code}}"},
		{UsageType: UsageSignIn, Locale: "fr", Content: "b {{code}}"},
		{UsageType: UsageGeneric, Content: "c {{code}}"},
	}
	if n := testing.AllocsPerRun(100, func() { _, _ = SelectTemplateIndex(ts, UsageSignIn, "fr-CA") }); n != 0 {
		t.Errorf("SelectTemplateIndex allocates %v times", n)
	}
	if i, err := SelectTemplateIndex(ts, UsageRegister, "fr"); err != nil || i != 2 {
		t.Errorf("SelectTemplateIndex(Register, fr) = %d, %v; want 2 (Generic)", i, err)
	}
	if i, err := SelectTemplateIndex(ts, UsageRegister, ""); err != nil || i != 2 {
		t.Errorf("SelectTemplateIndex(Register) = %d, %v; want 2", i, err)
	}
	if i, err := SelectTemplateIndex(ts[:2], UsageRegister, ""); ReasonOf(err) != ReasonTemplateNotFound || i != -1 {
		t.Errorf("SelectTemplateIndex without Generic = %d, %v; want -1, TEMPLATE_NOT_FOUND", i, err)
	}
}

func BenchmarkRender(b *testing.B) {
	content := "Your {{application.name}} verification code is {{code}}. It expires in {{minutes}} minutes."
	p := Payload{Code: "424242", Variables: map[string]any{"application": map[string]any{"name": "Acme"}, "minutes": 10.0}}
	b.Run("regexp", func(b *testing.B) {
		for b.Loop() {
			_ = renderRegexp(content, p)
		}
	})
	b.Run("Render", func(b *testing.B) {
		for b.Loop() {
			_ = Render(content, p)
		}
	})
	b.Run("compiled", func(b *testing.B) {
		c := CompileTemplate(content)
		b.ReportAllocs()
		for b.Loop() {
			_ = c.Render(p)
		}
	})
}
