package connectortest

import (
	"context"
	"encoding/json"
	"fmt"

	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sms-connector/sms-connector/connector"
	"github.com/sms-connector/sms-connector/internal/contract"
)

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

// testMetadata runs the metadata rules (contract.MetadataRules), one subtest each, on what
// Metadata returns.
func testMetadata(t *testing.T, newHarness HarnessMaker) {
	e := setup(t, newHarness)
	md, err := e.c.Metadata(t.Context())
	if err != nil {
		t.Fatalf("conformance: Metadata must not fail, got %v", err)
	}
	if md == nil {
		t.Fatal("conformance: Metadata must return metadata, got a nil *connector.Metadata and no error")
	}
	for _, r := range contract.MetadataRules() {
		t.Run(r.Name, func(t *testing.T) { report(t, r.Check(md)) })
	}
}

// testValidateConfig checks that ValidateConfig accepts valid configurations, reports every
// invalid one as violations with field paths (never as a Go error or a panic), and flags
// templates with neither {{code}} nor {{link}}.
func testValidateConfig(t *testing.T, newHarness HarnessMaker) {
	t.Run("Valid", func(t *testing.T) {
		cases := []struct {
			name      string
			templates []connector.Template
		}{
			{"generic and signin", baseTemplates()},
			{"generic only", []connector.Template{tpl(connector.UsageGeneric, "Your code is {{code}}")}},
			{"code placeholder with spaces", []connector.Template{tpl(connector.UsageGeneric, "Your code is {{ code }}")}},
			{"link template", []connector.Template{
				tpl(connector.UsageGeneric, "Your code is {{code}}"),
				tpl(connector.UsageOrganizationInvitation, "Join the organization: {{ link }}"),
			}},
			{"code and link in one template", []connector.Template{tpl(connector.UsageGeneric, "Open {{link}} or enter {{code}}")}},
			{"localised templates", localeTemplates()},
		}
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				e := setup(t, newHarness)
				cfg := e.h.Config(t, tc.templates)
				vs := e.validate(t, cfg, "a valid config")
				report(t, contract.Accepted(fmt.Sprintf("a valid config made by Harness.Config (%s: %s)", tc.name, show(cfg)), vs))
			})
		}
	})

	t.Run("ConfigTemplate", func(t *testing.T) {
		e := setup(t, newHarness)
		md, err := e.c.Metadata(t.Context())
		if err != nil || md == nil || md.ConfigTemplate == nil {
			t.Skip("no Metadata.ConfigTemplate (see the Metadata rules)")
		}
		raw, err := json.Marshal(md.ConfigTemplate)
		if err != nil {
			t.Skipf("Metadata.ConfigTemplate is not JSON (see Metadata/ConfigTemplate): %v", err)
		}
		report(t, contract.Accepted("Metadata.ConfigTemplate (config_template), the configuration platforms start from,", e.validate(t, raw, "Metadata.ConfigTemplate")))
	})

	t.Run("EmptyObject", func(t *testing.T) {
		e := setup(t, newHarness)
		report(t, contract.Rejected("the empty configuration {}", e.validate(t, []byte("{}"), "the empty configuration {}"), "", true))
	})

	t.Run("Invalid", func(t *testing.T) {
		e := setup(t, newHarness)
		cases := e.h.InvalidConfigs(t)
		if len(cases) == 0 {
			t.Skip("Harness.InvalidConfigs offers no connector-specific invalid configurations")
		}
		for _, tc := range cases {
			t.Run(tc.Name, func(t *testing.T) {
				e := setup(t, newHarness)
				vs := e.validate(t, tc.Config, "an invalid config")
				report(t, contract.Rejected(fmt.Sprintf("an invalid config of Harness.InvalidConfigs (%s: %s)", tc.Name, show(tc.Config)), vs, tc.Field, false))
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
				vs := e.validate(t, []byte(tc.cfg), "a config that is not a JSON object")
				report(t, contract.Rejected(fmt.Sprintf("a config that is not a JSON object (%s: %q)", tc.name, tc.cfg), vs, "", false))
			})
		}
	})

	t.Run("MissingCode", func(t *testing.T) {
		for _, tc := range missingCodeCases() {
			t.Run(tc.name, func(t *testing.T) {
				e := setup(t, newHarness)
				cfg := e.h.Config(t, tc.templates)
				vs := e.validate(t, cfg, "a template with neither {{code}} nor {{link}}")
				report(t, contract.MissingCode(fmt.Sprintf("%s (%s)", show(cfg), tc.name), vs, ""))
			})
		}
	})
}

// missingCodeCase is a template list one of whose templates has neither {{code}} nor {{link}}.
type missingCodeCase struct {
	name      string
	templates []connector.Template
}

// missingCodeCases are the template lists ValidateConfig must flag for a template with neither
// {{code}} nor {{link}}.
func missingCodeCases() []missingCodeCase {
	return []missingCodeCase{
		{"only template", []connector.Template{tpl(connector.UsageGeneric, "Your code is ready")}},
		{"second template", []connector.Template{
			tpl(connector.UsageGeneric, "Your code is {{code}}"),
			tpl(connector.UsageSignIn, "Sign in to {{application.name}}"),
		}},
		{"misspelled placeholder", []connector.Template{tpl(connector.UsageGeneric, "Your code is {{ codes }}")}},
		{"single braces", []connector.Template{tpl(connector.UsageGeneric, "Your code is {code}")}},
		{"misspelled link", []connector.Template{tpl(connector.UsageGeneric, "Join: {{ links }} {{invitation.link}}")}},
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
		if vs := e.validate(t, cfg, "a config with only a SignIn template"); len(vs) > 0 {
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
			more   []string // Payload.Locales (ui_locales)
			want   string
			rule   string
		}{
			{"none", connector.UsageSignIn, "", nil, "signin", "with no locale must use the template without a locale"},
			{"exact", connector.UsageSignIn, "fr", nil, "signin/fr", "must use the template of exactly that locale"},
			{"exact ignoring case", connector.UsageSignIn, "PT-br", nil, "signin/pt-BR", "must match locale tags case-insensitively"},
			{"region falls back to language", connector.UsageSignIn, "fr-CA", nil, "signin/fr", "must fall back to a template of the same language"},
			{"language matches a regional template", connector.UsageSignIn, "pt", nil, "signin/pt-BR", "must fall back to a template of the same language"},
			{"unknown locale", connector.UsageSignIn, "de", nil, "signin", "with no template of that language must use the template without a locale"},
			{"locale before usage type", connector.UsageSignIn, "es", nil, "generic/es", "must prefer a Generic template in that locale over its own usage type's template without a locale"},
			{"generic fallback with locale", connector.UsageRegister, "fr-FR", nil, "generic/fr", "without its own template must use the Generic template of that language"},
			{"preference list", connector.UsageSignIn, "de", []string{"pt-PT"}, "signin/pt-BR",
				"with no template of the locale's language must try the preference list (Payload.Locales, ui_locales)"},
			{"preference list in order", connector.UsageSignIn, "", []string{"ja", "es-MX", "fr"}, "generic/es",
				"must take the first preference that has a template, its Generic one before a later preference's own"},
			{"preference list exhausted", connector.UsageRegister, "ja", []string{"de", "ko"}, "generic",
				"with no template in any preferred language must use the template without a locale"},
			{"locale before the list", connector.UsageSignIn, "fr-CA", []string{"pt"}, "signin/fr",
				"must try the locale before the preference list"},
		}
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				e := setup(t, newHarness)
				m := message(e.h.Config(t, localeTemplates()), tc.usage)
				m.Payload.Locale, m.Payload.Locales = tc.locale, tc.more
				e.expectBody(t, fmt.Sprintf("Send of a %s message for locale %q and preferences %q %s, and", tc.usage, tc.locale, tc.more, tc.rule),
					m, tc.want+" "+code)
			})
		}
	})
}

// link is the link the suite sends in a link-only or code-and-link message.
const link = "https://example.com/invite?token=abc123"

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
		{"link only", "Join Acme: {{ link }}", connector.Payload{Link: link},
			"Join Acme: " + link, "must deliver the link of a link-only send in place of {{link}}"},
		{"code and link", "{{link}} or enter {{code}}", connector.Payload{Code: "424242", Link: link},
			link + " or enter 424242", "must replace {{link}} and {{code}} both"},
		{"link only, template with both", "{{link}} or enter {{code}}", connector.Payload{Link: link},
			link + " or enter ", "must render {{code}} as empty text in a link-only send of a template that also has {{link}}"},
		{"link is not a variable", "{{link}}", connector.Payload{Link: link, Variables: map[string]any{"link": "https://evil.example"}},
			link, "must take {{link}} from the payload's link, never from a variable named link"},
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

// limitSource names where the body limit of h comes from, for failure messages.
func limitSource(h Harness) string {
	if _, ok := h.(BodyLimiter); ok {
		return "the Harness's BodyLimiter.MaxBodyLength"
	}
	return "DefaultMaxBodyLength; a connector with another limit says so with BodyLimiter"
}

// testErrors checks the reasons of the standard failures: CONFIG_MISSING, INVALID_CONFIG with
// violations, INVALID_REQUEST for a template that cannot carry what the payload has,
// MESSAGE_TOO_LONG, each a *connector.Error, and nothing delivered.
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
				if tc.field != "" && !slices.ContainsFunc(ce.Violations, func(v connector.Violation) bool { return v.Field == tc.field }) {
					t.Errorf("conformance: %s must fail with INVALID_CONFIG whose Violations name the field %q, got %s",
						rule, tc.field, contract.ShowViolations(ce.Violations))
				}
			})
		}
	})

	t.Run("TemplateLacksValue", func(t *testing.T) {
		cases := []struct {
			name, content string
			payload       connector.Payload
			field         string
		}{
			{"link-only send, code template", "Your code is {{code}}", connector.Payload{Link: link}, "payload.code"},
			{"code-only send, link template", "Join: {{link}}", connector.Payload{Code: code}, "payload.link"},
		}
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				e := setup(t, newHarness)
				m := message(e.h.Config(t, []connector.Template{tpl(connector.UsageGeneric, tc.content)}), connector.UsageGeneric)
				m.Payload = tc.payload
				rule := fmt.Sprintf("Send whose template %q would carry neither the code nor the link of the payload %+v (connector.CheckCarries)", tc.content, tc.payload)
				ce := e.expectFailure(t, t.Context(), rule, m, connector.ReasonInvalidRequest)
				if !slices.ContainsFunc(ce.Violations, func(v connector.Violation) bool { return v.Field == tc.field }) {
					t.Errorf("conformance: %s must fail with INVALID_REQUEST whose Violations name the field %q, got %s",
						rule, tc.field, contract.ShowViolations(ce.Violations))
				}
			})
		}
	})

	t.Run("MessageTooLong", func(t *testing.T) {
		e := setup(t, newHarness)
		limit := maxBodyLength(e.h)
		m := message(e.h.Config(t, []connector.Template{tpl(connector.UsageGeneric, "{{code}} {{pad}}")}), connector.UsageGeneric)
		m.Payload.Variables = map[string]any{"pad": strings.Repeat("a", limit-len(code))} // the body is limit+1 characters
		e.expectFailure(t, t.Context(), fmt.Sprintf("Send whose rendered body is %d characters, over the limit of %d (%s),", limit+1, limit, limitSource(e.h)),
			m, connector.ReasonMessageTooLong)
	})

	t.Run("MaxLengthAccepted", func(t *testing.T) {
		e := setup(t, newHarness)
		limit := maxBodyLength(e.h)
		m := message(e.h.Config(t, []connector.Template{tpl(connector.UsageGeneric, "{{code}} {{pad}}")}), connector.UsageGeneric)
		pad := strings.Repeat("a", limit-len(code)-1) // the body is exactly limit characters
		m.Payload.Variables = map[string]any{"pad": pad}
		e.expectBody(t, fmt.Sprintf("Send whose rendered body is exactly the limit of %d characters (%s)", limit, limitSource(e.h)), m, code+" "+pad)
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
			report(t, contract.Receipt("Send of a valid message", r, m.To))
			if d.To != m.To {
				t.Errorf("conformance: Send must deliver to the recipient %q, delivered to %q", m.To, d.To)
			}
			segments, enc := connector.CountSegments(d.Body)
			if r.Segments != segments {
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
			mark := len(e.h.Delivered(t))
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
			if res.err == nil {
				t.Fatalf("conformance: %s, got success while the vendor was stalled (Staller.Stall must make every later request to the vendor hang until release)", tc.rule)
			}
			checkReason(t, tc.rule, res.r, res.err, tc.want)

			release()
			e.expectBody(t, "A connector must stay usable after a Send whose context ended: the next Send", message(cfg, connector.UsageSignIn), "signin "+code)
			if n := len(e.deliveredSince(t, mark)); n != 1 {
				t.Errorf("conformance: a Send whose context ended in the vendor must deliver nothing, and the next Send one message; %d were delivered since the stall "+
					"(if one is the request Staller.Stall held, the Harness broke its rule: a stalled request is never delivered, even after release)", n)
			}
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
			t.Errorf("conformance: a connector must be safe for concurrent use: Send in goroutine %d of %d concurrent Sends failed: %s", i, n, contract.Describe(o.res.err))
			continue
		}
		report(t, contract.Receipt(fmt.Sprintf("Send in goroutine %d of %d concurrent Sends", i, n), o.res.r, o.to))
		if o.res.r == nil {
			continue
		}
		id := o.res.r.MessageID
		if j, dup := ids[id]; dup {
			t.Errorf("conformance: every accepted message must have a unique MessageID: %d concurrent Sends, goroutines %d and %d both got %q", n, j, i, id)
		}
		ids[id] = i
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

// testMessageStatus checks delivery statuses (connector.ReadStatus, so a connector that is no
// connector.StatusReader answers NOT_SUPPORTED): the status of a message just accepted, and
// MESSAGE_NOT_FOUND for an id no send returned, or NOT_SUPPORTED for both.
func testMessageStatus(t *testing.T, newHarness HarnessMaker) {
	// sent sends a valid message with e and reads its status: whether the connector tells
	// statuses, and the configuration it was sent with.
	sent := func(t *testing.T, e *env) (bool, json.RawMessage) {
		t.Helper()
		cfg := e.h.Config(t, baseTemplates())
		r, _ := e.sendOK(t, "Send of a valid message", message(cfg, connector.UsageSignIn))
		st, err := connector.ReadStatus(t.Context(), e.c, r.MessageID, cfg)
		supported, p := contract.StatusOfSent("MessageStatus of the message Send just accepted", st, err, r.MessageID)
		report(t, p)
		return supported, cfg
	}
	t.Run("SentMessage", func(t *testing.T) {
		sent(t, setup(t, newHarness))
	})
	t.Run("UnknownID", func(t *testing.T) {
		e := setup(t, newHarness)
		supported, cfg := sent(t, e)
		st, err := connector.ReadStatus(t.Context(), e.c, contract.UnknownMessageID, cfg)
		report(t, contract.StatusOfUnknown(fmt.Sprintf("MessageStatus of %q, an id no send returned", contract.UnknownMessageID), st, err, supported))
	})
}
