package connectortest

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sms-connector/sms-connector/connector"
)

// reLanguageTag is a BCP 47 language tag as platforms use them: language, optional script,
// optional region, optional variants ("en", "fr-CA", "zh-Hant-TW", "pt-BR").
var reLanguageTag = regexp.MustCompile(`^[A-Za-z]{2,3}(-[A-Za-z]{4})?(-([A-Za-z]{2}|[0-9]{3}))?(-([A-Za-z0-9]{5,8}|[0-9][A-Za-z0-9]{3}))*$`)

// formItemTypes are the form item types a platform knows how to render.
var formItemTypes = []connector.FormItemType{
	connector.FormItemText, connector.FormItemNumber, connector.FormItemMultilineText,
	connector.FormItemSwitch, connector.FormItemJSON, connector.FormItemSelect,
}

// baseTemplates is a small valid template list: the Generic fallback and one usage type.
func baseTemplates() []connector.Template {
	return []connector.Template{
		tpl(connector.UsageGeneric, "generic {{code}}"),
		tpl(connector.UsageSignIn, "signin {{code}}"),
	}
}

// localeTemplates exercise locale selection in connector.SelectTemplate's order: the usage type
// in the locale, then in its language; Generic likewise; then the usage type's template without
// a locale, then Generic's. Every body names the template it came from.
func localeTemplates() []connector.Template {
	return []connector.Template{
		tpl(connector.UsageSignIn, "signin {{code}}"),
		tplLocale(connector.UsageSignIn, "fr", "signin/fr {{code}}"),
		tplLocale(connector.UsageSignIn, "pt-BR", "signin/pt-BR {{code}}"),
		tpl(connector.UsageGeneric, "generic {{code}}"),
		tplLocale(connector.UsageGeneric, "fr", "generic/fr {{code}}"),
		tplLocale(connector.UsageGeneric, "es", "generic/es {{code}}"),
	}
}

// testMetadata checks the shape of Metadata: what a platform needs to list the connector,
// render its form and offer a working default configuration.
func testMetadata(t *testing.T, newHarness HarnessMaker) {
	e := setup(t, newHarness)
	md, err := e.c.Metadata(t.Context())
	if err != nil {
		t.Fatalf("conformance: Metadata must not fail, got %v", err)
	}
	if md == nil {
		t.Fatal("conformance: Metadata must return metadata, got a nil *connector.Metadata and no error")
	}

	t.Run("ID", func(t *testing.T) {
		if md.ID == "" || strings.TrimSpace(md.ID) != md.ID || strings.ContainsAny(md.ID, " \t\n") {
			t.Errorf("conformance: Metadata.ID must be a non-empty id without spaces (platforms key stored configurations by it), got %q", md.ID)
		}
	})
	for _, f := range []struct {
		name string
		m    map[string]string
	}{{"Name", md.Name}, {"Description", md.Description}} {
		t.Run(f.name, func(t *testing.T) {
			if strings.TrimSpace(f.m["en"]) == "" {
				t.Errorf("conformance: Metadata.%s must have a non-empty \"en\" entry (the language platforms fall back to), got the languages %q",
					f.name, slices.Sorted(maps.Keys(f.m)))
			}
			for _, tag := range slices.Sorted(maps.Keys(f.m)) {
				if !reLanguageTag.MatchString(tag) {
					t.Errorf("conformance: every key of Metadata.%s must be a BCP 47 language tag like en, fr-CA or zh-Hant-TW, got %q", f.name, tag)
				}
				if strings.TrimSpace(f.m[tag]) == "" {
					t.Errorf("conformance: every entry of Metadata.%s must be non-empty, the %q entry is empty", f.name, tag)
				}
			}
		})
	}
	t.Run("FormItems", func(t *testing.T) {
		seen := make(map[string]int)
		for i, it := range md.FormItems {
			if it.Key == "" {
				t.Errorf("conformance: every Metadata.FormItems entry must have a Key (the config field it edits), FormItems[%d] has none", i)
				continue
			}
			if j, dup := seen[it.Key]; dup {
				t.Errorf("conformance: Metadata.FormItems keys must be unique, FormItems[%d] and FormItems[%d] both have the key %q", j, i, it.Key)
			}
			seen[it.Key] = i
			if strings.TrimSpace(it.Label) == "" {
				t.Errorf("conformance: every Metadata.FormItems entry must have a Label, %q has none", it.Key)
			}
			if !slices.Contains(formItemTypes, it.Type) {
				t.Errorf("conformance: Metadata.FormItems types must be one of %q, %q has type %q", formItemTypes, it.Key, it.Type)
			}
			if it.Type == connector.FormItemSelect && len(it.SelectItems) == 0 {
				t.Errorf("conformance: a Select form item must list its SelectItems, %q lists none", it.Key)
			}
			if _, err := json.Marshal(it.Default); err != nil {
				t.Errorf("conformance: a form item's Default must be JSON-like (it crosses the wire as JSON), the Default of %q is not: %v", it.Key, err)
			}
		}
	})
	t.Run("ConfigSchema", func(t *testing.T) {
		if md.ConfigSchema == nil {
			t.Fatal("conformance: Metadata.ConfigSchema must be a JSON Schema of the configuration, got nil")
		}
		if typ, _ := md.ConfigSchema["type"].(string); typ != "object" {
			t.Errorf("conformance: Metadata.ConfigSchema must be a JSON Schema with \"type\": \"object\" (configurations are JSON objects), got \"type\": %v",
				md.ConfigSchema["type"])
		}
		if _, err := json.Marshal(md.ConfigSchema); err != nil {
			t.Errorf("conformance: Metadata.ConfigSchema must be JSON-like (it crosses the wire as JSON): %v", err)
		}
	})
	t.Run("ConfigTemplate", func(t *testing.T) {
		if md.ConfigTemplate == nil {
			t.Fatal("conformance: Metadata.ConfigTemplate must be a ready-to-edit configuration, got nil")
		}
		raw, err := json.Marshal(md.ConfigTemplate)
		if err != nil {
			t.Fatalf("conformance: Metadata.ConfigTemplate must be JSON-like (it crosses the wire as JSON): %v", err)
		}
		vs, err := e.validate(t, raw)
		if err != nil {
			t.Fatalf("conformance: ValidateConfig must not fail on Metadata.ConfigTemplate, got %v", err)
		}
		if len(vs) > 0 {
			t.Errorf("conformance: Metadata.ConfigTemplate must be valid per ValidateConfig, it has the violations %+v", vs)
		}
	})
	t.Run("UsageTypes", func(t *testing.T) {
		if len(md.UsageTypes) == 0 {
			t.Error("conformance: Metadata.UsageTypes must list the usage types the connector sends, it is empty")
		}
		seen := make(map[connector.UsageType]bool)
		for _, u := range md.UsageTypes {
			if !u.Valid() {
				t.Errorf("conformance: Metadata.UsageTypes must hold only known usage types (%q), it holds %q", connector.UsageTypes(), u)
			}
			if seen[u] {
				t.Errorf("conformance: Metadata.UsageTypes must not repeat a usage type, %q is listed twice", u)
			}
			seen[u] = true
		}
	})
}

// testValidateConfig checks that ValidateConfig accepts valid configurations, reports every
// invalid one as violations with field paths (never as a Go error or a panic), and flags
// templates without {{code}}.
func testValidateConfig(t *testing.T, newHarness HarnessMaker) {
	t.Run("Valid", func(t *testing.T) {
		cases := []struct {
			name      string
			templates []connector.Template
		}{
			{"generic and signin", baseTemplates()},
			{"generic only", []connector.Template{tpl(connector.UsageGeneric, "Your code is {{code}}")}},
			{"code placeholder with spaces", []connector.Template{tpl(connector.UsageGeneric, "Your code is {{ code }}")}},
			{"localised templates", localeTemplates()},
		}
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				e := setup(t, newHarness)
				cfg := e.h.Config(t, tc.templates)
				vs, err := e.validate(t, cfg)
				if err != nil {
					t.Fatalf("conformance: ValidateConfig must not fail on a valid config, got %v for %s", err, show(cfg))
				}
				if len(vs) > 0 {
					t.Errorf("conformance: ValidateConfig must report no violations for a valid config (%s), got %+v", tc.name, vs)
				}
			})
		}
	})

	t.Run("Invalid", func(t *testing.T) {
		e := setup(t, newHarness)
		cases := e.h.InvalidConfigs(t)
		if len(cases) == 0 {
			t.Skip("the harness offers no connector-specific invalid configurations")
		}
		for _, tc := range cases {
			t.Run(tc.Name, func(t *testing.T) {
				e := setup(t, newHarness)
				vs, err := e.validate(t, tc.Config)
				if err != nil {
					t.Fatalf("conformance: ValidateConfig must report an invalid config as violations, not fail; got %v for %s", err, show(tc.Config))
				}
				if !hasField(vs, tc.Field) {
					t.Errorf("conformance: ValidateConfig must report a violation of field %q for an invalid config (%s), got violations of %q",
						tc.Field, tc.Name, fields(vs))
				}
				checkDescriptions(t, tc.Config, vs)
			})
		}
	})

	t.Run("NotAnObject", func(t *testing.T) {
		cases := []struct{ name, cfg string }{
			{"empty", ""},
			{"array", "[]"},
			{"string", `"x"`},
			{"null", "null"},
			{"number", "42"},
			{"boolean", "true"},
			{"truncated JSON", `{"templates": [`},
			{"not JSON", "templates: []"},
		}
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				e := setup(t, newHarness)
				vs, err := e.validate(t, []byte(tc.cfg))
				if err != nil {
					t.Fatalf("conformance: ValidateConfig must report a config that is not a JSON object as violations, not fail; got %v for %s",
						err, show([]byte(tc.cfg)))
				}
				if len(vs) == 0 {
					t.Errorf("conformance: ValidateConfig must report a violation for a config that is not a JSON object (%s: %q), got none", tc.name, tc.cfg)
				}
				checkDescriptions(t, []byte(tc.cfg), vs)
			})
		}
	})

	t.Run("MissingCode", func(t *testing.T) {
		for _, tc := range missingCodeCases() {
			t.Run(tc.name, func(t *testing.T) {
				e := setup(t, newHarness)
				cfg := e.h.Config(t, tc.templates)
				vs, err := e.validate(t, cfg)
				if err != nil {
					t.Fatalf("conformance: ValidateConfig must report a template without {{code}} as a violation, not fail; got %v", err)
				}
				if len(vs) == 0 {
					t.Fatalf("conformance: ValidateConfig must flag a template without {{code}} (%s), it reported no violation for %s", tc.name, show(cfg))
				}
				for _, v := range vs {
					if v.Field == "" {
						t.Errorf("conformance: a template without {{code}} must be reported with the field path of the template, got a violation with no field: %q", v.Description)
					}
				}
				checkDescriptions(t, cfg, vs)
			})
		}
	})
}

// missingCodeCase is a template list one of whose templates lacks {{code}}.
type missingCodeCase struct {
	name      string
	templates []connector.Template
}

// missingCodeCases are the template lists ValidateConfig must flag for lacking {{code}}.
func missingCodeCases() []missingCodeCase {
	return []missingCodeCase{
		{"only template", []connector.Template{tpl(connector.UsageGeneric, "Your code is ready")}},
		{"second template", []connector.Template{
			tpl(connector.UsageGeneric, "Your code is {{code}}"),
			tpl(connector.UsageSignIn, "Sign in to {{application.name}}"),
		}},
		{"misspelled placeholder", []connector.Template{tpl(connector.UsageGeneric, "Your code is {{ codes }}")}},
		{"single braces", []connector.Template{tpl(connector.UsageGeneric, "Your code is {code}")}},
	}
}

// testTemplateSelection checks Logto's template semantics, extended by locale as
// connector.SelectTemplate documents, through what is delivered: the usage type in the locale
// or its language, Generic in the locale or its language, the usage type without a locale,
// Generic without a locale, else TEMPLATE_NOT_FOUND.
func testTemplateSelection(t *testing.T, newHarness HarnessMaker) {
	t.Run("ExactUsageType", func(t *testing.T) {
		templates := []connector.Template{
			tpl(connector.UsageGeneric, "generic {{code}}"),
			tpl(connector.UsageSignIn, "signin {{code}}"),
			tpl(connector.UsageRegister, "register {{code}}"),
			tpl(connector.UsageForgotPassword, "forgot {{code}}"),
		}
		for _, tc := range []struct {
			usage connector.UsageType
			want  string
		}{
			{connector.UsageSignIn, "signin " + code},
			{connector.UsageRegister, "register " + code},
			{connector.UsageForgotPassword, "forgot " + code},
			{connector.UsageGeneric, "generic " + code},
		} {
			t.Run(string(tc.usage), func(t *testing.T) {
				e := setup(t, newHarness)
				e.expectBody(t, fmt.Sprintf("Send of a %s message with a %s template must use that template, not the Generic one, and", tc.usage, tc.usage),
					message(e.h.Config(t, templates), tc.usage), tc.want)
			})
		}
	})

	t.Run("GenericFallback", func(t *testing.T) {
		e := setup(t, newHarness)
		usages := connector.UsageTypes()
		if md, err := e.c.Metadata(t.Context()); err == nil && md != nil && len(md.UsageTypes) > 0 {
			usages = md.UsageTypes
		}
		for _, u := range usages {
			if u == connector.UsageGeneric || u == connector.UsageSignIn {
				continue
			}
			t.Run(string(u), func(t *testing.T) {
				e := setup(t, newHarness)
				e.expectBody(t, fmt.Sprintf("Send of a %s message with no %s template must fall back to the Generic template, and", u, u),
					message(e.h.Config(t, baseTemplates()), u), "generic "+code)
			})
		}
	})

	t.Run("NoTemplate", func(t *testing.T) {
		e := setup(t, newHarness)
		cfg := e.h.Config(t, []connector.Template{tpl(connector.UsageSignIn, "signin {{code}}")})
		vs, err := e.validate(t, cfg)
		if err != nil {
			t.Fatalf("conformance: ValidateConfig must not fail on a config with only a SignIn template, got %v", err)
		}
		if len(vs) > 0 {
			// The connector requires a fallback up front, so TEMPLATE_NOT_FOUND cannot happen;
			// Send must then agree with ValidateConfig.
			t.Logf("ValidateConfig rejects a config without a Generic template (%+v); checking that Send agrees", vs)
			e.expectFailure(t, t.Context(), "Send with a config that ValidateConfig rejects (a SignIn template only, no Generic)",
				message(cfg, connector.UsageRegister), connector.ReasonInvalidConfig)
			return
		}
		e.expectFailure(t, t.Context(), "Send of a Register message with neither a Register nor a Generic template",
			message(cfg, connector.UsageRegister), connector.ReasonTemplateNotFound)
		e.expectBody(t, "Send of a SignIn message with only a SignIn template must use it, and",
			message(cfg, connector.UsageSignIn), "signin "+code)
	})

	t.Run("Locale", func(t *testing.T) {
		cases := []struct {
			name   string
			usage  connector.UsageType
			locale string
			want   string
			rule   string
		}{
			{"none", connector.UsageSignIn, "", "signin", "with no locale must use the template without a locale"},
			{"exact", connector.UsageSignIn, "fr", "signin/fr", "must use the template of exactly that locale"},
			{"exact ignoring case", connector.UsageSignIn, "PT-br", "signin/pt-BR", "must match locale tags case-insensitively"},
			{"region falls back to language", connector.UsageSignIn, "fr-CA", "signin/fr", "must fall back to a template of the same language"},
			{"language matches a regional template", connector.UsageSignIn, "pt", "signin/pt-BR", "must fall back to a template of the same language"},
			{"unknown locale", connector.UsageSignIn, "de", "signin", "with no template of that language must use the template without a locale"},
			{"locale before usage type", connector.UsageSignIn, "es", "generic/es", "must prefer a Generic template in that locale over its own usage type's template without a locale"},
			{"generic fallback with locale", connector.UsageRegister, "fr-FR", "generic/fr", "without its own template must use the Generic template of that language"},
		}
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				e := setup(t, newHarness)
				m := message(e.h.Config(t, localeTemplates()), tc.usage)
				m.Payload.Locale = tc.locale
				e.expectBody(t, fmt.Sprintf("Send of a %s message for locale %q %s, and", tc.usage, tc.locale, tc.rule),
					m, tc.want+" "+code)
			})
		}
	})
}

// testRendering checks placeholder rendering through what is delivered. Every case uses one
// Generic template and a Generic message, so that a broken fallback does not show here.
func testRendering(t *testing.T, newHarness HarnessMaker) {
	app := map[string]any{"application": map[string]any{"name": "Acme", "ttl": float64(10)}}
	cases := []struct {
		name    string
		content string
		payload connector.Payload
		want    string
		rule    string
	}{
		{"code", "{{code}}", connector.Payload{Code: "424242"}, "424242", "must replace {{code}} with the code"},
		{"text around the code", "Your code is {{code}}. Do not share it.", connector.Payload{Code: "424242"},
			"Your code is 424242. Do not share it.", "must keep the text around placeholders as is"},
		{"code with spaces", "Code: {{ code }}.", connector.Payload{Code: "424242"}, "Code: 424242.", "must accept spaces inside the braces ({{ code }})"},
		{"repeated code", "{{code}} {{code}}", connector.Payload{Code: "424242"}, "424242 424242", "must replace every occurrence of a placeholder"},
		{"locale", "{{code}} ({{locale}})", connector.Payload{Code: "424242", Locale: "fr-CA"}, "424242 (fr-CA)", "must replace {{locale}} with the payload's locale"},
		{"dotted variable", "{{code}} for {{application.name}}", connector.Payload{Code: "424242", Variables: app},
			"424242 for Acme", "must replace a dotted placeholder with the nested variable"},
		{"number variable", "{{code}} expires in {{ application.ttl }} min", connector.Payload{Code: "424242", Variables: app},
			"424242 expires in 10 min", "must render a number variable as its JSON text"},
		{"missing variable", "{{code}}{{application.missing}}!", connector.Payload{Code: "424242", Variables: app},
			"424242!", "must render a placeholder with no value as empty text"},
		{"missing locale", "{{code}}[{{locale}}]", connector.Payload{Code: "424242"}, "424242[]", "must render {{locale}} as empty text when there is no locale"},
		{"code that looks like a placeholder", "{{code}} {{locale}}", connector.Payload{Code: "{{locale}}", Locale: "en"},
			"{{locale}} en", "must not expand placeholders inside the code (a rendered value is never rendered again)"},
		{"variable that looks like a placeholder", "{{code}} {{application.name}}",
			connector.Payload{Code: "424242", Variables: map[string]any{"application": map[string]any{"name": "{{code}}"}}},
			"424242 {{code}}", "must not expand placeholders inside a variable's value"},
		{"non-ASCII text", "Ihr Code: {{code}} – gültig 10 Minuten", connector.Payload{Code: "424242"},
			"Ihr Code: 424242 – gültig 10 Minuten", "must keep non-ASCII text as is"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := setup(t, newHarness)
			m := message(e.h.Config(t, []connector.Template{tpl(connector.UsageGeneric, tc.content)}), connector.UsageGeneric)
			m.Payload = tc.payload
			e.expectBody(t, fmt.Sprintf("Rendering %q %s; Send", tc.content, tc.rule), m, tc.want)
		})
	}
}

// maxBodyLength is the harness's body limit, or DefaultMaxBodyLength.
func maxBodyLength(h Harness) int {
	if bl, ok := h.(BodyLimiter); ok {
		return bl.MaxBodyLength()
	}
	return DefaultMaxBodyLength
}

// testErrors checks the reasons of the standard failures: CONFIG_MISSING, INVALID_CONFIG with
// violations, MESSAGE_TOO_LONG, each a *connector.Error, and nothing delivered.
func testErrors(t *testing.T, newHarness HarnessMaker) {
	t.Run("ConfigMissing", func(t *testing.T) {
		for _, tc := range []struct {
			name string
			cfg  []byte
		}{{"nil", nil}, {"empty", []byte{}}} {
			t.Run(tc.name, func(t *testing.T) {
				e := setup(t, newHarness)
				e.expectFailure(t, t.Context(), fmt.Sprintf("Send with an empty Config (%s)", tc.name),
					message(tc.cfg, connector.UsageGeneric), connector.ReasonConfigMissing)
			})
		}
	})

	t.Run("InvalidConfig", func(t *testing.T) {
		type invalidCase struct {
			name  string
			cfg   func(t *testing.T, e *env) []byte
			field string // a violation of this field is required; "" means any violation
		}
		var cases []invalidCase
		for _, s := range []struct{ name, cfg string }{
			{"array", "[]"},
			{"string", `"x"`},
			{"truncated JSON", `{"templates": [`},
		} {
			cases = append(cases, invalidCase{name: s.name, cfg: func(*testing.T, *env) []byte { return []byte(s.cfg) }})
		}
		for _, mc := range missingCodeCases() {
			cases = append(cases, invalidCase{
				name: "template without code, " + mc.name,
				cfg:  func(t *testing.T, e *env) []byte { return e.h.Config(t, mc.templates) },
			})
		}
		e := setup(t, newHarness)
		for _, ic := range e.h.InvalidConfigs(t) {
			cases = append(cases, invalidCase{name: ic.Name, cfg: func(*testing.T, *env) []byte { return ic.Config }, field: ic.Field})
		}
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				e := setup(t, newHarness)
				cfg := tc.cfg(t, e)
				rule := fmt.Sprintf("Send with an invalid config (%s)", tc.name)
				ce := e.expectFailure(t, t.Context(), rule, message(cfg, connector.UsageGeneric), connector.ReasonInvalidConfig)
				if len(ce.Violations) == 0 {
					t.Errorf("conformance: %s must fail with INVALID_CONFIG carrying its Violations, got none", rule)
				}
				if tc.field != "" && !hasField(ce.Violations, tc.field) {
					t.Errorf("conformance: %s must fail with INVALID_CONFIG whose Violations name the field %q, got violations of %q",
						rule, tc.field, fields(ce.Violations))
				}
			})
		}
	})

	t.Run("MessageTooLong", func(t *testing.T) {
		e := setup(t, newHarness)
		limit := maxBodyLength(e.h)
		m := message(e.h.Config(t, []connector.Template{tpl(connector.UsageGeneric, "{{code}} {{pad}}")}), connector.UsageGeneric)
		m.Payload.Variables = map[string]any{"pad": strings.Repeat("a", limit-len(code))} // the body is limit+1 characters
		e.expectFailure(t, t.Context(), fmt.Sprintf("Send whose rendered body is %d characters, over the limit of %d,", limit+1, limit),
			m, connector.ReasonMessageTooLong)
	})

	t.Run("MaxLengthAccepted", func(t *testing.T) {
		e := setup(t, newHarness)
		limit := maxBodyLength(e.h)
		m := message(e.h.Config(t, []connector.Template{tpl(connector.UsageGeneric, "{{code}} {{pad}}")}), connector.UsageGeneric)
		pad := strings.Repeat("a", limit-len(code)-1) // the body is exactly limit characters
		m.Payload.Variables = map[string]any{"pad": pad}
		e.expectBody(t, fmt.Sprintf("Send whose rendered body is exactly the limit of %d characters", limit), m, code+" "+pad)
	})
}

// testReceipt checks the receipt of accepted messages against what was delivered.
func testReceipt(t *testing.T, newHarness HarnessMaker) {
	cases := []struct {
		name    string
		content string
	}{
		{"GSM-7 single segment", "Your code is {{code}}"},
		{"GSM-7 two segments", "{{code}} " + strings.Repeat("a", 200)},
		{"GSM-7 extension characters", "{{code}} " + strings.Repeat("€", 77)}, // 84 characters, 161 septets
		{"UCS-2 single segment", "您的验证码是 {{code}}"},
		{"UCS-2 two segments", "{{code}} " + strings.Repeat("ł", 70)},
		{"UCS-2 outside the BMP", "{{code}} " + strings.Repeat("😀", 32)}, // 39 characters, 71 UTF-16 units
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := setup(t, newHarness)
			m := message(e.h.Config(t, []connector.Template{tpl(connector.UsageGeneric, tc.content)}), connector.UsageGeneric)
			r, d := e.sendOK(t, "Send of a valid message", m)
			if want := connector.Render(tc.content, m.Payload); d.Body != want {
				t.Errorf("conformance: Send must deliver the rendered template %q, delivered %q", want, d.Body)
			}
			if r.MessageID == "" {
				t.Error("conformance: the Receipt of an accepted message must carry the vendor's MessageID, it is empty")
			}
			if r.To != m.To {
				t.Errorf("conformance: Receipt.To must echo the E.164 recipient %q, got %q", m.To, r.To)
			}
			if d.To != m.To {
				t.Errorf("conformance: Send must deliver to the recipient %q, delivered to %q", m.To, d.To)
			}
			segments, enc := connector.CountSegments(d.Body)
			if r.Segments < 1 || r.Segments != segments {
				t.Errorf("conformance: Receipt.Segments must be the segment count of the delivered body (connector.CountSegments: %d), got %d",
					segments, r.Segments)
			}
			if r.Encoding != enc {
				t.Errorf("conformance: Receipt.Encoding must be the encoding of the delivered body (connector.CountSegments: %q), got %q",
					enc, r.Encoding)
			}
		})
	}
}

// testContext checks that Send honours its context: one already cancelled or expired fails
// with CANCELLED or PROVIDER_TIMEOUT and delivers nothing; one that ends while the vendor
// hangs (with a Staller) makes Send return with that reason, and the connector stays usable.
func testContext(t *testing.T, newHarness HarnessMaker) {
	t.Run("Cancelled", func(t *testing.T) {
		e := setup(t, newHarness)
		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		e.expectFailure(t, ctx, "Send with an already cancelled context",
			message(e.h.Config(t, baseTemplates()), connector.UsageSignIn), connector.ReasonCancelled)
	})

	t.Run("DeadlineExceeded", func(t *testing.T) {
		e := setup(t, newHarness)
		ctx, cancel := context.WithDeadline(t.Context(), time.Unix(0, 0))
		defer cancel()
		e.expectFailure(t, ctx, "Send with a context whose deadline has passed",
			message(e.h.Config(t, baseTemplates()), connector.UsageSignIn), connector.ReasonProviderTimeout)
	})

	stalled := []struct {
		name string
		ctx  func(parent context.Context) (context.Context, context.CancelFunc)
		want connector.Reason
		rule string
	}{
		{"StalledCancel", func(parent context.Context) (context.Context, context.CancelFunc) {
			ctx, cancel := context.WithCancel(parent)
			time.AfterFunc(20*time.Millisecond, cancel)
			return ctx, cancel
		}, connector.ReasonCancelled, "Send blocked in the vendor must return with reason CANCELLED when its context is cancelled"},
		{"StalledDeadline", func(parent context.Context) (context.Context, context.CancelFunc) {
			return context.WithTimeout(parent, 50*time.Millisecond)
		}, connector.ReasonProviderTimeout, "Send blocked in the vendor must return with reason PROVIDER_TIMEOUT when its deadline passes"},
	}
	for _, tc := range stalled {
		t.Run(tc.name, func(t *testing.T) {
			e := setup(t, newHarness)
			s, ok := e.h.(Staller)
			if !ok {
				t.Skip("the harness does not implement connectortest.Staller")
			}
			cfg := e.h.Config(t, baseTemplates())
			release := s.Stall(t)
			defer release()
			ctx, cancel := tc.ctx(t.Context())
			defer cancel()
			done := make(chan sendResult, 1)
			go func() { done <- safeSend(ctx, e.c, message(cfg, connector.UsageSignIn)) }()
			res := awaitStalled(t, done, release, tc.rule)
			if res.panicked != nil {
				t.Fatalf("conformance: Send must not panic, it panicked with: %v", res.panicked)
			}
			checkReason(t, tc.rule, res.r, res.err, tc.want)

			release()
			e.expectBody(t, "A connector must stay usable after a Send whose context ended: the next Send", message(cfg, connector.UsageSignIn), "signin "+code)
		})
	}
}

// testConcurrency sends from 32 goroutines at once, with ValidateConfig and Metadata calls
// among them: every message must be delivered as rendered, with a unique MessageID. Run under
// -race, it also proves the connector free of data races.
func testConcurrency(t *testing.T, newHarness HarnessMaker) {
	const n = 32
	e := setup(t, newHarness)
	cfg := e.h.Config(t, []connector.Template{tpl(connector.UsageGeneric, "code {{code}}")})
	mark := len(e.h.Delivered(t))

	type outcome struct {
		to, code string
		res      sendResult
		other    error // a failure of ValidateConfig or Metadata in the same goroutine
	}
	outs := make([]outcome, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			o := &outs[i]
			o.to, o.code = fmt.Sprintf("+1415555%04d", i), fmt.Sprintf("%06d", 700000+i)
			m := message(cfg, connector.UsageGeneric)
			m.To, m.Payload.Code = o.to, o.code
			defer func() {
				if p := recover(); p != nil {
					o.other = fmt.Errorf("panicked with: %v", p)
				}
			}()
			switch i % 2 {
			case 0:
				if _, err := e.c.Metadata(t.Context()); err != nil {
					o.other = fmt.Errorf("the call to Metadata failed: %w", err)
				}
			case 1:
				if _, err := e.c.ValidateConfig(t.Context(), cfg); err != nil {
					o.other = fmt.Errorf("the call to ValidateConfig failed: %w", err)
				}
			}
			o.res = safeSend(t.Context(), e.c, m)
		})
	}
	wg.Wait()

	ids := make(map[string]int)
	for i, o := range outs {
		switch {
		case o.other != nil:
			t.Errorf("conformance: a connector must be safe for concurrent use: goroutine %d: %v", i, o.other)
			continue
		case o.res.panicked != nil:
			t.Errorf("conformance: a connector must be safe for concurrent use: Send in goroutine %d panicked with: %v", i, o.res.panicked)
			continue
		case o.res.err != nil:
			t.Errorf("conformance: a connector must be safe for concurrent use: Send in goroutine %d of %d concurrent Sends failed: %s", i, n, describe(o.res.err))
			continue
		case o.res.r == nil:
			t.Errorf("conformance: Send must return a receipt, goroutine %d got a nil *connector.Receipt and no error", i)
			continue
		}
		id := o.res.r.MessageID
		if j, dup := ids[id]; dup {
			t.Errorf("conformance: every accepted message must have a unique MessageID: %d concurrent Sends, goroutines %d and %d both got %q", n, j, i, id)
		}
		ids[id] = i
		if o.res.r.To != o.to {
			t.Errorf("conformance: Receipt.To must echo the message's own recipient under concurrency: goroutine %d sent to %q, its receipt says %q", i, o.to, o.res.r.To)
		}
	}

	got := e.deliveredSince(t, mark)
	if len(got) != n {
		t.Errorf("conformance: %d concurrent Sends must deliver %d messages, delivered %d", n, n, len(got))
	}
	byTo := make(map[string][]string)
	for _, d := range got {
		byTo[d.To] = append(byTo[d.To], d.Body)
	}
	for i, o := range outs {
		if want := "code " + o.code; !slices.Equal(byTo[o.to], []string{want}) {
			t.Errorf("conformance: under concurrency each message must be delivered once, as rendered: goroutine %d sent %q to %s, delivered there: %q",
				i, want, o.to, byTo[o.to])
		}
	}
}
