package connector

import (
	"encoding/json"
	"errors"
	"regexp"
	"slices"
	"strings"
	"testing"

	"golang.org/x/text/language"
)

func TestSelectTemplate(t *testing.T) {
	// The configuration: SignIn only in German and French, a Generic default and a
	// Spanish Generic.
	repro := []Template{
		{UsageType: UsageSignIn, Locale: "de", Content: "Anmeldung {{code}}"},
		{UsageType: UsageSignIn, Locale: "fr", Content: "connexion {{code}}"},
		{UsageType: UsageGeneric, Content: "generic {{code}}"},
		{UsageType: UsageGeneric, Locale: "es", Content: "genérico {{code}}"},
	}
	broad := []Template{
		{UsageType: UsageSignIn, Content: "sign-in default {{code}}"},
		{UsageType: UsageSignIn, Locale: "fr", Content: "connexion {{code}}"},
		{UsageType: UsageSignIn, Locale: "fr-FR", Content: "connexion FR {{code}}"},
		{UsageType: UsageSignIn, Locale: "pt", Content: "entrar {{code}}"},
		{UsageType: UsageSignIn, Locale: "zh-Hans", Content: "登录 {{code}}"},
		{UsageType: UsageSignIn, Locale: "zh-Hant", Content: "登入 {{code}}"},
		{UsageType: UsageSignIn, Locale: "nb", Content: "logg inn {{code}}"},
		{UsageType: UsageSignIn, Locale: "sr-Latn", Content: "prijava {{code}}"},
		{UsageType: UsageGeneric, Content: "generic {{code}}"},
		{UsageType: UsageGeneric, Locale: "de", Content: "allgemein {{code}}"},
		{UsageType: UsageGeneric, Locale: "en-GB", Content: "generic GB {{code}}"},
		{UsageType: UsageGeneric, Locale: "id", Content: "umum {{code}}"},
		{UsageType: UsageRegister, Locale: "ja", Content: "登録 {{code}}"},
	}
	tests := []struct {
		name   string
		ts     []Template
		usage  UsageType
		locale string
		want   string
	}{
		{"issue: SignIn es gets the Spanish Generic", repro, UsageSignIn, "es", "genérico {{code}}"},
		{"issue: SignIn ja gets the default Generic", repro, UsageSignIn, "ja", "generic {{code}}"},
		{"issue: SignIn without locale gets the default Generic", repro, UsageSignIn, "", "generic {{code}}"},
		{"issue: SignIn de", repro, UsageSignIn, "de", "Anmeldung {{code}}"},
		{"issue: SignIn de-AT finds de", repro, UsageSignIn, "de-AT", "Anmeldung {{code}}"},
		{"issue: SignIn es-MX finds the Spanish Generic", repro, UsageSignIn, "es-MX", "genérico {{code}}"},

		{"1 usage in the locale", broad, UsageSignIn, "fr", "connexion {{code}}"},
		{"1 usage in the locale, any case", broad, UsageSignIn, "FR-fr", "connexion FR {{code}}"},
		{"1 usage in the locale, underscore", broad, UsageSignIn, "fr_FR", "connexion FR {{code}}"},
		{"1 usage in the language: fr-CA", broad, UsageSignIn, "fr-CA", "connexion {{code}}"},
		{"1 usage in the language: fr_BE", broad, UsageSignIn, "fr_BE", "connexion {{code}}"},
		{"1 usage in the language: pt-BR finds pt", broad, UsageSignIn, "pt-BR", "entrar {{code}}"},
		{"1 usage in the language: pt-PT finds pt", broad, UsageSignIn, "pt-PT", "entrar {{code}}"},
		{"1 usage in the language: zh-TW finds zh-Hant", broad, UsageSignIn, "zh-TW", "登入 {{code}}"},
		{"1 usage in the language: zh-HK finds zh-Hant", broad, UsageSignIn, "zh-HK", "登入 {{code}}"},
		{"1 usage in the language: zh-CN finds zh-Hans", broad, UsageSignIn, "zh-CN", "登录 {{code}}"},
		{"1 usage in the language: zh finds zh-Hans", broad, UsageSignIn, "zh", "登录 {{code}}"},
		{"1 usage in the language: sr-Cyrl finds sr-Latn", broad, UsageSignIn, "sr-Cyrl", "prijava {{code}}"},
		{"1 usage in the language: no finds nb", broad, UsageSignIn, "no", "logg inn {{code}}"},
		{"1 usage in the language: unknown variant", broad, UsageSignIn, "fr-abcdefgh", "connexion {{code}}"},
		{"1 beats 2: usage in the language over Generic in the locale", broad, UsageSignIn, "pt-BR", "entrar {{code}}"},
		{"1 usage in the locale, only localised", broad, UsageRegister, "ja", "登録 {{code}}"},
		{"2 Generic in the locale", broad, UsageSignIn, "de", "allgemein {{code}}"},
		{"2 Generic in the language", broad, UsageSignIn, "de-AT", "allgemein {{code}}"},
		{"2 Generic in the language: en-US finds en-GB", broad, UsageSignIn, "en-US", "generic GB {{code}}"},
		{"2 Generic in the language for a localised-only usage", broad, UsageRegister, "en", "generic GB {{code}}"},
		{"2 Generic for a usage without templates", broad, UsageBindMfa, "de-CH", "allgemein {{code}}"},
		{"3 usage without locale: language absent", broad, UsageSignIn, "ja", "sign-in default {{code}}"},
		{"3 usage without locale: no locale asked", broad, UsageSignIn, "", "sign-in default {{code}}"},
		{"3 never another language: nn is not nb", broad, UsageSignIn, "nn", "sign-in default {{code}}"},
		{"3 never another language: ms is not the Generic id", broad, UsageSignIn, "ms", "sign-in default {{code}}"},
		{"3 never another language: gsw is not the Generic de", broad, UsageSignIn, "gsw", "sign-in default {{code}}"},
		{"3 unknown language", broad, UsageSignIn, "xyz", "sign-in default {{code}}"},
		{"3 not a tag", broad, UsageSignIn, "12-34", "sign-in default {{code}}"},
		{"4 Generic without locale", broad, UsageForgotPassword, "", "generic {{code}}"},
		{"4 Generic without locale: language absent", broad, UsageForgotPassword, "ko", "generic {{code}}"},
		{"4 never the first localised template", broad, UsageRegister, "ko", "generic {{code}}"},
		{"4 never the first localised template, no locale asked", broad, UsageRegister, "", "generic {{code}}"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := SelectTemplate(tt.ts, tt.usage, tt.locale)
			if err != nil {
				t.Fatal(err)
			}
			if got.Content != tt.want {
				t.Errorf("got %q (locale %q), want %q", got.Content, got.Locale, tt.want)
			}
		})
	}
}

// TestSelectTemplatePreferences checks that SelectTemplate walks the asked locales (Locale,
// then Locales in order) through step 1 before the locale-less steps 2 and 3.
func TestSelectTemplatePreferences(t *testing.T) {
	ts := []Template{
		{UsageType: UsageSignIn, Content: "signin {{code}}"},
		{UsageType: UsageSignIn, Locale: "fr", Content: "signin/fr {{code}}"},
		{UsageType: UsageSignIn, Locale: "pt-BR", Content: "signin/pt-BR {{code}}"},
		{UsageType: UsageGeneric, Content: "generic {{code}}"},
		{UsageType: UsageGeneric, Locale: "de", Content: "generic/de {{code}}"},
		{UsageType: UsageGeneric, Locale: "es-ES", Content: "generic/es-ES {{code}}"},
	}
	tests := []struct {
		name   string
		usage  UsageType
		locale string
		more   []string
		want   string
	}{
		{"1a usage in the first preference", UsageSignIn, "", []string{"fr", "de"}, "signin/fr {{code}}"},
		{"1a usage in a later preference's language", UsageSignIn, "ja", []string{"ko", "pt-PT"}, "signin/pt-BR {{code}}"},
		{"1b Generic in a later preference", UsageSignIn, "ja", []string{"de"}, "generic/de {{code}}"},
		{"1b Generic in a later preference's language", UsageSignIn, "ja", []string{"es-MX"}, "generic/es-ES {{code}}"},
		{"locale before the list", UsageSignIn, "de", []string{"fr"}, "generic/de {{code}}"},
		{"list in order: Generic of the first beats usage of the second", UsageSignIn, "", []string{"de-AT", "fr"}, "generic/de {{code}}"},
		{"list in order: usage of the first", UsageSignIn, "", []string{"fr-CA", "de"}, "signin/fr {{code}}"},
		{"empty entries and locale are skipped", UsageSignIn, "", []string{"", "fr"}, "signin/fr {{code}}"},
		{"underscore in the list", UsageSignIn, "", []string{"pt_BR"}, "signin/pt-BR {{code}}"},
		{"2 usage without locale after every preference", UsageSignIn, "ja", []string{"ko", "zh"}, "signin {{code}}"},
		{"3 Generic without locale after every preference", UsageRegister, "ja", []string{"fr"}, "generic {{code}}"},
		{"3 Generic for a usage without templates in a preference", UsageRegister, "ja", []string{"de"}, "generic/de {{code}}"},
		{"never another language in the list", UsageSignIn, "nn", []string{"ms"}, "signin {{code}}"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := SelectTemplate(ts, tt.usage, tt.locale, tt.more...)
			if err != nil {
				t.Fatal(err)
			}
			if got.Content != tt.want {
				t.Errorf("got %q (locale %q), want %q", got.Content, got.Locale, tt.want)
			}
		})
	}
	localised := []Template{{UsageType: UsageGeneric, Locale: "de", Content: "{{code}}"}}
	if got, err := SelectTemplate(localised, UsageSignIn, "fr", "ja"); ReasonOf(err) != ReasonTemplateNotFound ||
		!strings.Contains(err.Error(), "asked locales") {
		t.Errorf("no template in any asked language: %v, %v; want TEMPLATE_NOT_FOUND about the asked locales", got, err)
	}
	if got, err := SelectTemplate(localised, UsageSignIn, "", ""); ReasonOf(err) != ReasonTemplateNotFound ||
		!strings.Contains(err.Error(), "without a locale") {
		t.Errorf("only empty locales: %v, %v; want TEMPLATE_NOT_FOUND about templates without a locale", got, err)
	}
}

// TestSelectTemplateCrossLanguage holds the premise of the "never another language" cases:
// x/text's Matcher alone would match these pairs, with a confidence of High, so it is the base
// language check that refuses them.
func TestSelectTemplateCrossLanguage(t *testing.T) {
	for _, pair := range [][2]string{{"nn", "nb"}, {"ms", "id"}, {"gsw", "de"}} {
		_, _, c := language.NewMatcher([]language.Tag{language.MustParse(pair[1])}).Match(language.MustParse(pair[0]))
		if c < language.High {
			t.Errorf("the Matcher rates %s for %s %v; the test needs a pair it would match", pair[1], pair[0], c)
		}
		ts := []Template{{UsageType: UsageGeneric, Locale: pair[1], Content: "{{code}}"}}
		if got, err := SelectTemplate(ts, UsageSignIn, pair[0]); ReasonOf(err) != ReasonTemplateNotFound {
			t.Errorf("%s got the %s template %v (%v); want TEMPLATE_NOT_FOUND", pair[0], pair[1], got, err)
		}
	}
}

func TestSelectTemplateNotFound(t *testing.T) {
	localised := []Template{
		{UsageType: UsageSignIn, Locale: "de", Content: "Anmeldung {{code}}"},
		{UsageType: UsageSignIn, Locale: "fr", Content: "connexion {{code}}"},
		{UsageType: UsageGeneric, Locale: "es", Content: "genérico {{code}}"},
	}
	tests := []struct {
		name   string
		ts     []Template
		usage  UsageType
		locale string
	}{
		{"no template of the usage nor Generic", []Template{{UsageType: UsageSignIn, Content: "x"}}, UsageRegister, ""},
		{"empty list", nil, UsageGeneric, ""},
		{"localised only: another language", localised, UsageSignIn, "ja"},
		{"localised only: no locale", localised, UsageSignIn, ""},
		{"localised only: Generic in another language", localised, UsageRegister, "fr"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := SelectTemplate(tt.ts, tt.usage, tt.locale)
			if ReasonOf(err) != ReasonTemplateNotFound || got != nil {
				t.Fatalf("got %v, %v; want TEMPLATE_NOT_FOUND", got, err)
			}
			if !errors.Is(err, &Error{Reason: ReasonTemplateNotFound}) {
				t.Fatalf("errors.Is does not match the reason")
			}
		})
	}
	// The same list serves the languages it has.
	if got, err := SelectTemplate(localised, UsageSignIn, "fr-CA"); err != nil || got.Locale != "fr" {
		t.Errorf("localised only, fr-CA: %v, %v; want the fr template", got, err)
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
	// {{link}} is the payload's link, never a variable named link.
	lp := Payload{Link: "https://example.com/i?t=1", Variables: map[string]any{"link": "https://evil.example"}}
	if got := Render("Join: {{link}} {{ link }}", lp); got != "Join: https://example.com/i?t=1 https://example.com/i?t=1" {
		t.Errorf("Render({{link}}) = %q", got)
	}
	if got := Render("Join: {{link}}.", Payload{Code: "1"}); got != "Join: ." {
		t.Errorf("Render({{link}}) without a link = %q, want it empty", got)
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

func TestHasCodeOrLinkPlaceholder(t *testing.T) {
	for in, want := range map[string]bool{
		"code {{code}}": true, "{{ link }}": true, "{{link}} {{code}}": true, "{{links}}": false,
		"{{ a.link }}": false, "{link}": false, "no code": false, "{{link.url}}": false,
	} {
		if got := HasCodeOrLinkPlaceholder(in); got != want {
			t.Errorf("HasCodeOrLinkPlaceholder(%q) = %v", in, got)
		}
		if got, re := HasCodeOrLinkPlaceholder(in), regexp.MustCompile(PatternCodeOrLinkInBody).MatchString(in); got != re {
			t.Errorf("HasCodeOrLinkPlaceholder(%q) = %v, but PatternCodeOrLinkInBody matches: %v", in, got, re)
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
		case "link":
			return p.Link
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
	// The locale as listed, and no locale, need no language matching and allocate nothing.
	for _, locale := range []string{"fr", "FR", ""} {
		if n := testing.AllocsPerRun(100, func() { _, _ = SelectTemplateIndex(ts, UsageSignIn, locale) }); n != 0 {
			t.Errorf("SelectTemplateIndex(SignIn, %q) allocates %v times", locale, n)
		}
	}
	if n := testing.AllocsPerRun(100, func() { _, _ = SelectTemplateIndex(ts, UsageSignIn, "", "", "fr") }); n != 0 {
		t.Errorf("SelectTemplateIndex(SignIn, \"\", \"\", fr) allocates %v times", n)
	}
	if i, err := SelectTemplateIndex(ts, UsageSignIn, "fr-CA"); err != nil || i != 1 {
		t.Errorf("SelectTemplateIndex(SignIn, fr-CA) = %d, %v; want 1", i, err)
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

// BenchmarkSelectTemplateIndex: the cost of each kind of step, next to a vendor call's 100+ ms.
func BenchmarkSelectTemplateIndex(b *testing.B) {
	ts := []Template{
		{UsageType: UsageSignIn, Content: "a {{code}}"},
		{UsageType: UsageSignIn, Locale: "fr", Content: "b {{code}}"},
		{UsageType: UsageSignIn, Locale: "de", Content: "c {{code}}"},
		{UsageType: UsageGeneric, Content: "d {{code}}"},
	}
	for _, locale := range []string{"", "fr", "fr-CA", "ja"} {
		b.Run("locale="+locale, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				_, _ = SelectTemplateIndex(ts, UsageSignIn, locale)
			}
		})
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

// TestTemplateListFallback: TemplateList reports each usage type whose templates all carry a
// locale when neither it nor Generic has one without, and exactly those usage types are the
// ones SelectTemplate finds nothing for in a locale no template has.
func TestTemplateListFallback(t *testing.T) {
	tests := []struct {
		name      string
		templates string   // the list's JSON items
		want      []string // usage types reported, in UsageTypes order
	}{
		{"issue: localised SignIn with a Generic default", `{"usageType":"SignIn","content":"{{code}}","locale":"de"},{"usageType":"SignIn","content":"{{code}}","locale":"fr"},` +
			`{"usageType":"Generic","content":"{{code}}"},{"usageType":"Generic","content":"{{code}}","locale":"es"}`, nil},
		{"localised SignIn only", `{"usageType":"SignIn","content":"{{code}}","locale":"de"},{"usageType":"SignIn","content":"{{code}}","locale":"fr"}`, []string{"SignIn"}},
		{"localised SignIn and Generic", `{"usageType":"SignIn","content":"{{code}}","locale":"de"},{"usageType":"Generic","content":"{{code}}","locale":"es"}`, []string{"SignIn", "Generic"}},
		{"SignIn default after its localised one", `{"usageType":"SignIn","content":"{{code}}","locale":"de"},{"usageType":"SignIn","content":"{{code}}"}`, nil},
		{"SignIn default, localised Generic", `{"usageType":"SignIn","content":"{{code}}"},{"usageType":"Generic","content":"{{code}}","locale":"es"}`, []string{"Generic"}},
		{"several usage types", `{"usageType":"SignIn","content":"{{code}}","locale":"de"},{"usageType":"Register","content":"{{code}}","locale":"ja"},` +
			`{"usageType":"BindMfa","content":"{{code}}"}`, []string{"Register", "SignIn"}},
		{"no locales at all", `{"usageType":"SignIn","content":"{{code}}"}`, nil},
		{"unknown usage type ignored", `{"usageType":"Nope","content":"{{code}}","locale":"de"},{"usageType":"SignIn","content":"{{code}}"}`, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := &ConfigReader{}
			var fields map[string]json.RawMessage
			if err := json.Unmarshal([]byte(`{"templates":[`+tt.templates+`]}`), &fields); err != nil {
				t.Fatal(err)
			}
			ts := r.TemplateList(fields, "templates", TemplateRules{MaxLength: 100, TooLong: "is %d long, over %d"})
			var got []string
			for _, v := range r.Violations {
				if v.Field != "templates" {
					continue // the unknown usage type's own violation
				}
				for _, u := range UsageTypes() {
					if strings.HasPrefix(v.Description, "has "+string(u)+" templates only with a locale") {
						got = append(got, string(u))
					}
				}
				if !strings.Contains(v.Description, "TEMPLATE_NOT_FOUND") {
					t.Errorf("violation %q does not say what a send would get", v.Description)
				}
			}
			if !slices.Equal(got, tt.want) {
				t.Fatalf("reported %q, want %q (%v)", got, tt.want, r.Violations)
			}
			for _, u := range UsageTypes() {
				if !slices.ContainsFunc(ts, func(t Template) bool { return t.UsageType == u }) {
					continue
				}
				_, err := SelectTemplate(ts, u, "ko")
				if reported := slices.Contains(tt.want, string(u)); reported != (err != nil) {
					t.Errorf("%s in ko: reported %v, SelectTemplate error %v", u, reported, err)
				}
			}
		})
	}
}
