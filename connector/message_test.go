package connector

import (
	"errors"
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
			if strings.Join(got, ",") != strings.Join(tt.fields, ",") {
				t.Errorf("fields = %v, want %v", got, tt.fields)
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
