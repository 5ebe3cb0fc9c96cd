package server_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/sms-connector/sms-connector/connector/twilio"
	smsv1 "github.com/sms-connector/sms-connector/gen/connector/sms/v1"
)

// localised is a template with a locale.
func localised(usage, locale, content string) map[string]any {
	return map[string]any{"usageType": usage, "locale": locale, "content": content}
}

// TestLocaleFallbackOverGRPC: with SignIn templates only in German and French, a Generic
// default and a Spanish Generic, a SignIn send never gets another language than the one asked
// for while a template in it, or a default, exists (connector.SelectTemplate's order); and
// ValidateConfig reports the configuration without the Generic default.
func TestLocaleFallbackOverGRPC(t *testing.T) {
	s := newHardStack(t, binaryDefences(), twilio.Options{})
	ctx := context.Background()
	templates := []any{
		localised("SignIn", "de", "Anmeldecode {{code}}"),
		localised("SignIn", "fr", "code de connexion {{code}}"),
		tpl("Generic", "code {{code}}"),
		localised("Generic", "es", "código {{code}}"),
	}
	tests := []struct{ locale, want string }{
		{"es", "código 424242"},
		{"es-MX", "código 424242"},
		{"ja", "code 424242"},
		{"", "code 424242"},
		{"de-AT", "Anmeldecode 424242"},
		{"fr_CA", "code de connexion 424242"},
	}
	for i, tt := range tests {
		r := req(func(r *smsv1.SendMessageRequest, t *testing.T) {
			r.Config = config(t, func(m map[string]any) { m["templates"] = templates })
			r.Payload.Locale = tt.locale
		})(t, fmt.Sprintf("+1415555%04d", 200+i))
		if _, err := s.client.SendMessage(ctx, r); err != nil {
			t.Fatalf("locale %q: %v", tt.locale, err)
		}
		if got := s.emu.Messages()[i].Body; got != tt.want {
			t.Errorf("locale %q: body %q, want %q", tt.locale, got, tt.want)
		}
	}

	resp, err := s.client.ValidateConfig(ctx, &smsv1.ValidateConfigRequest{Config: config(t, func(m map[string]any) {
		m["templates"] = templates[:2]
	})})
	if err != nil {
		t.Fatal(err)
	}
	if resp.GetValid() || len(resp.GetViolations()) != 1 || resp.GetViolations()[0].GetField() != "templates" {
		t.Errorf("ValidateConfig of localised SignIn templates only: %v, want one violation of templates", resp)
	}
}
