package connector

import (
	"errors"
	"strings"
	"testing"
)

// TestTemplateSetRender checks selection, the length limit, the segment limit and segment
// counting, on the rendered body.
func TestTemplateSetRender(t *testing.T) {
	gsm := func(n int) string { return strings.Repeat("x", n-6) + "{{code}}" } // n characters once rendered
	tpl := func(u UsageType, content string) Template { return Template{UsageType: u, Content: content} }
	p := Payload{Code: "123456", Variables: map[string]any{"app": strings.Repeat("a", 100)}}
	tests := []struct {
		name        string
		templates   []Template
		maxLength   int
		maxSegments int
		payload     Payload
		wantBody    string
		wantReason  Reason
		wantMessage string // in the error's message
	}{
		{name: "renders and counts", templates: []Template{tpl(UsageGeneric, "Code {{code}}")}, maxLength: 12,
			payload: Payload{Code: "123"}, wantBody: "Code 123"},
		{name: "over the length limit", templates: []Template{tpl(UsageGeneric, "Code {{code}}")}, maxLength: 12,
			payload: Payload{Code: "12345678"}, wantReason: ReasonMessageTooLong,
			wantMessage: "13 characters (UTF-16 code units), over the limit of 12"},
		{name: "no template", maxLength: 12, wantReason: ReasonTemplateNotFound},
		{name: "10 segments of GSM-7 pass", templates: []Template{tpl(UsageSignIn, gsm(1530))}, maxLength: 1600,
			maxSegments: 10, payload: p, wantBody: gsm(1530)[:1524] + "123456"},
		{name: "11 segments of GSM-7 are refused", templates: []Template{tpl(UsageSignIn, gsm(1531))}, maxLength: 1600,
			maxSegments: 10, payload: p, wantReason: ReasonMessageTooLong, wantMessage: "takes 11 SMS segments (GSM-7), over this connector's limit of 10"},
		{name: "UCS-2 counts 67 per part", templates: []Template{tpl(UsageSignIn, strings.Repeat("Ж", 135)+"{{code}}")}, maxLength: 1600,
			maxSegments: 2, payload: p, wantReason: ReasonMessageTooLong, wantMessage: "takes 3 SMS segments (UCS-2)"},
		{name: "variables count once rendered", templates: []Template{tpl(UsageSignIn, "{{code}} {{app}}")}, maxLength: 1600,
			maxSegments: 1, payload: p, wantBody: "123456 " + strings.Repeat("a", 100)},
		{name: "variables push it over", templates: []Template{tpl(UsageSignIn, gsm(100)+"{{app}}")}, maxLength: 1600,
			maxSegments: 1, payload: p, wantReason: ReasonMessageTooLong, wantMessage: "takes 2 SMS segments"},
		{name: "the selected template is the one that counts", templates: []Template{tpl(UsageRegister, gsm(1000)), tpl(UsageGeneric, "{{code}}")},
			maxLength: 1600, maxSegments: 1, payload: p, wantBody: "123456"},
		{name: "link template, link only", templates: []Template{tpl(UsageSignIn, "Join: {{link}}")}, maxLength: 100,
			payload: Payload{Link: "https://example.com/i"}, wantBody: "Join: https://example.com/i"},
		{name: "link template, code only", templates: []Template{tpl(UsageSignIn, "Join: {{link}}")}, maxLength: 100,
			payload: Payload{Code: "123456"}, wantReason: ReasonInvalidRequest,
			wantMessage: "payload.link is required by the SignIn template: it has {{link}} and no {{code}}"},
		{name: "code template, link only", templates: []Template{tpl(UsageGeneric, "Code {{code}}")}, maxLength: 100,
			payload: Payload{Link: "https://example.com/i"}, wantReason: ReasonInvalidRequest,
			wantMessage: "payload.code is required by the Generic template: it has {{code}} and no {{link}}"},
		{name: "localised template names its locale", templates: []Template{tpl(UsageGeneric, "{{link}}"), {UsageType: UsageSignIn, Locale: "fr", Content: "Code {{code}}"}},
			maxLength: 100, payload: Payload{Locale: "fr-CA", Link: "https://example.com/i"}, wantReason: ReasonInvalidRequest,
			wantMessage: "payload.code is required by the SignIn template for locale fr: it has {{code}} and no {{link}}"},
		{name: "code template, code and link", templates: []Template{tpl(UsageSignIn, "Code {{code}}")}, maxLength: 100,
			payload: Payload{Code: "123456", Link: "https://example.com/i"}, wantBody: "Code 123456"},
		{name: "both placeholders, link only", templates: []Template{tpl(UsageSignIn, "{{link}} or code [{{code}}]")}, maxLength: 100,
			payload: Payload{Link: "https://example.com/i"}, wantBody: "https://example.com/i or code []"},
		{name: "both placeholders, code only", templates: []Template{tpl(UsageSignIn, "{{link}} or code [{{code}}]")}, maxLength: 100,
			payload: Payload{Code: "123456"}, wantBody: " or code [123456]"},
		{name: "the preference list selects", templates: []Template{tpl(UsageGeneric, "{{code}}"), {UsageType: UsageGeneric, Locale: "de", Content: "Code: {{code}}"}},
			maxLength: 100, payload: Payload{Code: "1", Locale: "ja", Locales: []string{"ko", "de-CH"}}, wantBody: "Code: 1"},
		{name: "no segment limit", templates: []Template{tpl(UsageSignIn, gsm(1600))}, maxLength: 1600,
			payload: p, wantBody: gsm(1600)[:1594] + "123456"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := NewTemplateSet(tt.templates, tt.maxLength, "the limit", tt.maxSegments)
			r, err := s.Render(UsageSignIn, tt.payload)
			if tt.wantReason != "" {
				var ce *Error
				if !errors.As(err, &ce) || ce.Reason != tt.wantReason || !strings.Contains(ce.Message, tt.wantMessage) {
					t.Fatalf("Render = %+v, %v; want %s saying %q", r, err, tt.wantReason, tt.wantMessage)
				}
				return
			}
			if err != nil || r.Body != tt.wantBody {
				t.Fatalf("Render = %+v, %v; want body %q", r, err, tt.wantBody)
			}
			if segments, enc := CountSegments(r.Body); r.Segments != segments || r.Encoding != enc {
				t.Errorf("Render counts %d %s, CountSegments %d %s", r.Segments, r.Encoding, segments, enc)
			}
		})
	}
}
