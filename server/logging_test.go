package server

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/protobuf/types/known/structpb"

	"github.com/sms-connector/sms-connector/connector"
	smsv1 "github.com/sms-connector/sms-connector/gen/connector/sms/v1"
)

// secret is a credential placed in request configs; no log entry may contain it.
const secret = "s3cr3t-token-value"

// otp is the verification code of those requests; it is as secret as the config.
const otp = "otp-x9q2z"

// finished returns the "finished call" entries.
func finished(logs *observer.ObservedLogs) []observer.LoggedEntry {
	return logs.FilterMessage("finished call").AllUntimed()
}

func TestLogOneLinePerRPC(t *testing.T) {
	fake := &fakeConnector{}
	h := start(t, fake, "", nil)
	ctx := ctxFor(t)

	// 1: success.
	if _, err := h.client.SendMessage(ctx, validRequest(t)); err != nil {
		t.Fatal(err)
	}
	// 2: a connector error with a cause.
	fake.setSend(func(context.Context, *connector.Message) (*connector.Receipt, error) {
		return nil, &connector.Error{Reason: connector.ReasonProviderOutcomeUnknown, Message: "Twilio failed",
			Provider: "twilio", ProviderCode: "500", Err: errors.New("HTTP 503 from api.twilio.com")}
	})
	req := validRequest(t)
	req.UsageType = smsv1.UsageType_USAGE_TYPE_BIND_MFA
	if _, err := h.client.SendMessage(ctx, req); err == nil {
		t.Fatal("want an error")
	}
	// 3: an invalid request.
	req = validRequest(t)
	req.To = "not a number"
	req.UsageType = smsv1.UsageType_USAGE_TYPE_UNSPECIFIED
	if _, err := h.client.SendMessage(ctx, req); err == nil {
		t.Fatal("want an error")
	}
	// 4, 5: the other RPCs.
	if _, err := h.client.ValidateConfig(ctx, &smsv1.ValidateConfigRequest{Config: validRequest(t).Config}); err != nil {
		t.Fatal(err)
	}
	if _, err := h.client.GetMetadata(ctx, &smsv1.GetMetadataRequest{}); err != nil {
		t.Fatal(err)
	}

	entries := finished(h.logs)
	if len(entries) != 5 {
		for _, e := range entries {
			t.Log(e.ContextMap())
		}
		t.Fatalf("%d finish lines for 5 RPCs", len(entries))
	}
	want := []map[string]any{
		{"grpc.method": "SendMessage", "grpc.code": "OK", "connector.id": fakeID, "sms.usage_type": "SignIn", "sms.to": "+150******06"},
		{"grpc.method": "SendMessage", "grpc.code": "Unavailable", "connector.id": fakeID, "sms.usage_type": "BindMfa", "sms.to": "+150******06",
			"error.reason": "PROVIDER_OUTCOME_UNKNOWN", "error.provider": "twilio", "error.provider_code": "500"},
		{"grpc.method": "SendMessage", "grpc.code": "InvalidArgument", "sms.usage_type": "USAGE_TYPE_UNSPECIFIED", "sms.to": "(invalid)",
			"error.reason": "INVALID_REQUEST"},
		{"grpc.method": "ValidateConfig", "grpc.code": "OK", "connector.id": fakeID},
		{"grpc.method": "GetMetadata", "grpc.code": "OK", "connector.id": fakeID},
	}
	for i, e := range entries {
		got := e.ContextMap()
		for k, v := range want[i] {
			if fmt.Sprint(got[k]) != fmt.Sprint(v) {
				t.Errorf("line %d: %s = %v, want %v (%v)", i+1, k, got[k], v, got)
			}
		}
		if got["grpc.service"] != ServiceName {
			t.Errorf("line %d: grpc.service = %v", i+1, got["grpc.service"])
		}
		if _, ok := got["grpc.time_ms"].(float64); !ok {
			t.Errorf("line %d: grpc.time_ms = %#v, want a number", i+1, got["grpc.time_ms"])
		}
		if want[i]["grpc.code"] == "OK" {
			if _, ok := got["error.reason"]; ok {
				t.Errorf("line %d: error.reason on success", i+1)
			}
		}
		if i != 0 && i != 1 && i != 2 {
			if _, ok := got["sms.to"]; ok {
				t.Errorf("line %d: sms.to on a %v call", i+1, got["grpc.method"])
			}
		}
	}
	if entries[0].Level != zapcore.InfoLevel || entries[1].Level != zapcore.WarnLevel {
		t.Errorf("finish levels = %s, %s; want info for OK, warn for UNAVAILABLE", entries[0].Level, entries[1].Level)
	}
	for _, e := range h.logs.FilterMessage("started call").AllUntimed() {
		if e.Level != zapcore.DebugLevel {
			t.Errorf("start line at %s", e.Level)
		}
	}
	if n := h.logs.FilterMessage("started call").Len(); n != 5 {
		t.Errorf("%d start lines for 5 RPCs", n)
	}
	causes := h.logs.FilterField(zapcoreString("error.reason", "PROVIDER_OUTCOME_UNKNOWN")).FilterMessage("connector error cause").AllUntimed()
	if len(causes) != 1 || causes[0].Level != zapcore.DebugLevel || !strings.Contains(fmt.Sprint(causes[0].ContextMap()["error.cause"]), "HTTP 503") {
		t.Errorf("cause entries = %v", causes)
	}
}

func TestLogNoSecrets(t *testing.T) {
	fake := &fakeConnector{}
	h := start(t, fake, "", nil) // the observer records every level, debug included
	ctx := ctxFor(t)
	withSecret := func() *structpb.Struct {
		return mustStruct(t, map[string]any{"authToken": secret, "x": "ok", "nested": map[string]any{"apiKeySecret": secret}})
	}

	req := validRequest(t)
	req.Config = withSecret()
	req.Payload.Code = otp
	req.Payload.Variables = mustStruct(t, map[string]any{"note": secret})
	if _, err := h.client.SendMessage(ctx, req); err != nil {
		t.Fatal(err)
	}
	req.Config = mustStruct(t, map[string]any{"authToken": secret, "x": 7}) // INVALID_CONFIG
	if _, err := h.client.SendMessage(ctx, req); err == nil {
		t.Fatal("want INVALID_CONFIG")
	}
	req.Config = withSecret()
	req.Payload.Code = ""
	if _, err := h.client.SendMessage(ctx, req); err == nil {
		t.Fatal("want INVALID_REQUEST")
	}
	if _, err := h.client.ValidateConfig(ctx, &smsv1.ValidateConfigRequest{Config: withSecret()}); err != nil {
		t.Fatal(err)
	}
	// Each failure quotes the recipient, as a vendor's error text may ("The 'To' number ... is
	// not valid"): the log must show it masked, wherever it is written.
	for _, fail := range []func(context.Context, *connector.Message) (*connector.Receipt, error){
		func(_ context.Context, m *connector.Message) (*connector.Receipt, error) {
			return nil, &connector.Error{Reason: connector.ReasonProviderAuthFailed, Message: "Twilio rejected the credentials",
				Err: fmt.Errorf("HTTP 401 sending to %s (%s)", m.To, req.To)}
		},
		func(_ context.Context, m *connector.Message) (*connector.Receipt, error) {
			panic("boom sending to " + m.To + " (" + req.To + ")")
		},
		func(_ context.Context, m *connector.Message) (*connector.Receipt, error) {
			return nil, fmt.Errorf("untyped: The 'To' number %s is not valid (%s)", m.To, req.To)
		},
		func(ctx context.Context, m *connector.Message) (*connector.Receipt, error) {
			return nil, fmt.Errorf("stopped sending to %s: %w", m.To, context.Canceled)
		},
	} {
		fake.setSend(fail)
		req := validRequest(t)
		req.Config = withSecret()
		req.Payload.Code = otp
		if _, err := h.client.SendMessage(ctx, req); err == nil {
			t.Fatal("want an error")
		}
	}
	hc := healthpb.NewHealthClient(h.conn)
	if _, err := hc.Check(ctx, &healthpb.HealthCheckRequest{}); err != nil {
		t.Fatal(err)
	}

	all := h.logs.AllUntimed()
	if len(all) < 2*8 {
		t.Fatalf("only %d entries; the observer is not seeing the RPCs", len(all))
	}
	for _, e := range all {
		text := e.Message + " " + fmt.Sprint(e.ContextMap()) + " " + e.Stack
		for _, leak := range []string{secret, otp, "5005550006", "500 555 0006", "authToken"} {
			if strings.Contains(text, leak) {
				t.Errorf("log entry %q at %s contains %q: %s", e.Message, e.Level, leak, text)
			}
		}
	}
	// Health probes are logged, but only at debug level.
	for _, e := range finished(h.logs) {
		if e.ContextMap()["grpc.service"] == "grpc.health.v1.Health" && e.Level != zapcore.DebugLevel {
			t.Errorf("health check finish logged at %s", e.Level)
		}
	}
}

// zapcoreString is a string field to filter observed logs by.
func zapcoreString(k, v string) zapcore.Field {
	return zapcore.Field{Key: k, Type: zapcore.StringType, String: v}
}

func TestRedactPhones(t *testing.T) {
	tests := []struct{ in, want string }{
		{"The 'To' number +15005550001 is not a valid phone number.", "The 'To' number +150******01 is not a valid phone number."},
		{"to 1 (500) 555-0003 failed", "to 1 (5**********03 failed"},
		{"HTTP 503 after 12 ms", "HTTP 503 after 12 ms"},
		{"", ""},
	}
	for _, tt := range tests {
		if got := redactPhones(tt.in); got != tt.want {
			t.Errorf("redactPhones(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}
