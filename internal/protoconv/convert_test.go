package protoconv

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"reflect"
	"strings"
	"testing"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/structpb"

	"github.com/sms-connector/sms-connector/connector"
	smsv1 "github.com/sms-connector/sms-connector/gen/connector/sms/v1"
)

// TestCodeTableMatchesProto fails when the proto ErrorReason enum and the code table disagree
// in any direction, or a reason maps to OK or Unknown.
func TestCodeTableMatchesProto(t *testing.T) {
	inProto := map[connector.Reason]bool{}
	for n, name := range smsv1.ErrorReason_name {
		if n == int32(smsv1.ErrorReason_ERROR_REASON_UNSPECIFIED) {
			continue
		}
		r := connector.Reason(strings.TrimPrefix(name, "ERROR_REASON_"))
		inProto[r] = true
		if _, ok := codeOf[r]; !ok {
			t.Errorf("proto reason %s has no entry in the code table", name)
		}
	}
	for r, c := range codeOf {
		if !inProto[r] {
			t.Errorf("table reason %s is not in the proto enum ErrorReason", r)
		}
		if c == codes.OK || c == codes.Unknown {
			t.Errorf("reason %s maps to %s", r, c)
		}
	}
}

// TestUsageTableMatchesProto fails when a proto usage type or a connector usage type has no
// partner in the table.
func TestUsageTableMatchesProto(t *testing.T) {
	if len(smsv1.UsageType_name) != len(usageTypes)+1 {
		t.Errorf("the proto has %d usage types, the table %d", len(smsv1.UsageType_name)-1, len(usageTypes))
	}
	for _, u := range connector.UsageTypes() {
		p, ok := UsageToProto(u)
		if !ok || UsageFromProto(p) != u {
			t.Errorf("%s does not survive the round trip (%s, %v)", u, p, ok)
		}
	}
	if UsageFromProto(smsv1.UsageType_USAGE_TYPE_UNSPECIFIED) != "" {
		t.Error("UNSPECIFIED is not the empty usage type")
	}
	if u := UsageFromProto(99); u.Valid() || u != "USAGE_TYPE_99" {
		t.Errorf("unknown number gives %q", u)
	}
}

// roundTrip sends err through Status and back, as a server and a client do.
func roundTrip(err error) *connector.Error {
	return ErrorFromStatus(Status(err).Err())
}

func TestErrorRoundTrip(t *testing.T) {
	tests := []struct {
		name string
		in   *connector.Error
	}{
		{"reason and message", &connector.Error{Reason: connector.ReasonTemplateNotFound, Message: "no template for SignIn"}},
		{"provider metadata", &connector.Error{
			Reason: connector.ReasonCountryNotPermitted, Message: "geo permission", Provider: "twilio",
			ProviderCode: "21408", MoreInfo: "https://www.twilio.com/docs/errors/21408",
			Err: errors.New("vendor detail that never crosses the wire"),
		}},
		{"retry after", &connector.Error{Reason: connector.ReasonProviderRateLimited, Message: "slow down", RetryAfter: 1500 * time.Millisecond}},
		{"violations", &connector.Error{Reason: connector.ReasonInvalidRequest, Message: "bad", Violations: []connector.Violation{
			{Field: "to", Description: "is required"}, {Field: "payload.code", Description: "is required"},
		}}},
		{"internal", &connector.Error{Reason: connector.ReasonInternal, Message: "m"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := roundTrip(fmt.Errorf("wrapped: %w", tt.in))
			want := *tt.in
			want.Err = nil
			gotCopy := *got
			gotCopy.Err = nil
			if !reflect.DeepEqual(gotCopy, want) {
				t.Errorf("round trip = %+v\nwant         %+v", gotCopy, want)
			}
			var ce *connector.Error
			if !errors.As(error(got), &ce) || !errors.Is(got, &connector.Error{Reason: tt.in.Reason}) {
				t.Errorf("errors.As/Is do not find the reason in %v", got)
			}
			if status.Code(got) != Status(tt.in).Code() {
				t.Errorf("status.Code = %s, want %s", status.Code(got), Status(tt.in).Code())
			}
			if strings.Contains(got.Error(), "vendor detail") {
				t.Errorf("the cause crossed the wire: %v", got)
			}
		})
	}
}

func TestErrorFromStatusWithoutErrorInfo(t *testing.T) {
	foreign, _ := status.New(codes.FailedPrecondition, "someone else's").WithDetails(&errdetails.ErrorInfo{Reason: "QUOTA", Domain: "example.com"})
	tests := []struct {
		name   string
		err    error
		reason connector.Reason
		msg    string
	}{
		{"connection refused", status.Error(codes.Unavailable, "connection refused"), connector.ReasonInternal, "connection refused"},
		{"cancelled by the caller", status.Error(codes.Canceled, "context canceled"), connector.ReasonCancelled, "context canceled"},
		{"deadline of the caller", status.Error(codes.DeadlineExceeded, "context deadline exceeded"), connector.ReasonProviderTimeout, "context deadline exceeded"},
		{"refused by a gateway", status.Error(codes.Unauthenticated, "no credentials"), connector.ReasonUnauthenticated, "no credentials"},
		{"an RPC an older server lacks", status.Error(codes.Unimplemented, "unknown method GetMessageStatus"), connector.ReasonNotSupported, "unknown method GetMessageStatus"},
		{"another domain", foreign.Err(), connector.ReasonInternal, "someone else's"},
		{"not a status", errors.New("plain"), connector.ReasonInternal, "the call failed: plain"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := ErrorFromStatus(tt.err)
			if got.Reason != tt.reason || got.Message != tt.msg || got.Provider != "" {
				t.Errorf("got %+v, want reason %s message %q", got, tt.reason, tt.msg)
			}
			if !errors.Is(got, tt.err) && status.Code(got) != status.Code(tt.err) {
				t.Errorf("the status is lost: %v", got)
			}
		})
	}
	if ErrorFromStatus(nil) != nil {
		t.Error("ErrorFromStatus(nil) is not nil")
	}
}

func TestMessageRoundTrip(t *testing.T) {
	payloads := map[string]connector.Payload{
		"code, locales, variables": {Code: "123456", Locale: "fr-CA", Locales: []string{"fr", "en-GB"}, Variables: map[string]any{
			"application": map[string]any{"name": "Acme"}, "n": 3.0, "ok": true,
		}},
		"link only":     {Link: "https://example.com/invite?token=abc", Locales: []string{"de"}},
		"code and link": {Code: "42", Link: "https://example.com/i"},
	}
	for name, p := range payloads {
		t.Run(name, func(t *testing.T) {
			in := &connector.Message{
				To: "+15005550006", UsageType: connector.UsageMfaVerification, Payload: p,
				Config:         json.RawMessage(`{"templates":[{"usageType":"Generic","content":"{{code}}"}]}`),
				IdempotencyKey: "idem-1", ClientIP: "2001:db8::1",
			}
			req, err := RequestFromMessage(in)
			if err != nil {
				t.Fatal(err)
			}
			if req.GetPayload().GetLink() != p.Link || !reflect.DeepEqual(req.GetPayload().GetUiLocales(), p.Locales) {
				t.Errorf("request payload link %q, ui_locales %q; want %q, %q", req.GetPayload().GetLink(), req.GetPayload().GetUiLocales(), p.Link, p.Locales)
			}
			out, err := MessageFromRequest(req)
			if err != nil {
				t.Fatal(err)
			}
			cfg, err := StructToJSON(req.GetConfig())
			if err != nil {
				t.Fatal(err)
			}
			out.Config = cfg
			var a, b any
			if json.Unmarshal(in.Config, &a) != nil || json.Unmarshal(out.Config, &b) != nil || !reflect.DeepEqual(a, b) {
				t.Errorf("config = %s, want %s", out.Config, in.Config)
			}
			out.Config, in.Config = nil, nil
			if !reflect.DeepEqual(out, in) {
				t.Errorf("round trip = %+v\nwant         %+v", out, in)
			}
		})
	}
}

// TestMessageFromRequestPayloadFields checks that the payload's problems come back under their
// proto field names, and that a request without a payload is told it needs a code or a link.
func TestMessageFromRequestPayloadFields(t *testing.T) {
	tests := []struct {
		name    string
		payload *smsv1.Payload
		fields  []string
	}{
		{"no payload", nil, []string{"payload"}},
		{"empty payload", &smsv1.Payload{}, []string{"payload.code"}},
		{"link over http", &smsv1.Payload{Link: "http://example.com/i"}, []string{"payload.link"}},
		{"bad preference entries", &smsv1.Payload{Code: "1", UiLocales: []string{"fr", "", "{{x}}"}}, []string{"payload.ui_locales[1]", "payload.ui_locales[2]"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := MessageFromRequest(&smsv1.SendMessageRequest{To: "+15005550006", UsageType: smsv1.UsageType_USAGE_TYPE_SIGN_IN, Payload: tt.payload})
			var ce *connector.Error
			if !errors.As(err, &ce) || ce.Reason != connector.ReasonInvalidRequest {
				t.Fatalf("err = %v, want INVALID_REQUEST", err)
			}
			var got []string
			for _, v := range ce.Violations {
				got = append(got, v.Field)
			}
			if !reflect.DeepEqual(got, tt.fields) {
				t.Errorf("fields %q, want %q", got, tt.fields)
			}
		})
	}
	msg, err := MessageFromRequest(&smsv1.SendMessageRequest{To: "+15005550006", UsageType: smsv1.UsageType_USAGE_TYPE_ORGANIZATION_INVITATION,
		Payload: &smsv1.Payload{Link: "https://example.com/i", UiLocales: []string{"fr-CA"}}})
	if err != nil || msg.Payload.Link != "https://example.com/i" || !reflect.DeepEqual(msg.Payload.Locales, []string{"fr-CA"}) {
		t.Errorf("link-only request: %+v, %v", msg, err)
	}
}

func TestRequestFromMessageRefusesWhatTheWireCannotCarry(t *testing.T) {
	tests := []struct {
		name  string
		edit  func(*connector.Message)
		field string
	}{
		{"unknown usage type", func(m *connector.Message) { m.UsageType = "Teleport" }, "usage_type"},
		{"variables that are not JSON", func(m *connector.Message) { m.Payload.Variables = map[string]any{"f": func() {}} }, "payload.variables"},
		{"config that is an array", func(m *connector.Message) { m.Config = json.RawMessage(`[1]`) }, "config"},
		{"config that is not JSON", func(m *connector.Message) { m.Config = json.RawMessage(`{nope`) }, "config"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := &connector.Message{To: "+15005550006", UsageType: connector.UsageSignIn, Payload: connector.Payload{Code: "1"}}
			tt.edit(m)
			_, err := RequestFromMessage(m)
			var ce *connector.Error
			if !errors.As(err, &ce) || ce.Reason != connector.ReasonInvalidRequest || len(ce.Violations) != 1 || ce.Violations[0].Field != tt.field {
				t.Errorf("err = %v, want INVALID_REQUEST on %s", err, tt.field)
			}
		})
	}
	if _, err := RequestFromMessage(nil); connector.ReasonOf(err) != connector.ReasonInvalidRequest {
		t.Errorf("nil message: %v", err)
	}
	req, err := RequestFromMessage(&connector.Message{To: "+1", Config: json.RawMessage("  ")})
	if err != nil || req.Config != nil || req.UsageType != smsv1.UsageType_USAGE_TYPE_UNSPECIFIED {
		t.Errorf("empty config and usage type: %v %v", req, err)
	}
}

func TestReceiptRoundTrip(t *testing.T) {
	for _, in := range []*connector.Receipt{
		{MessageID: "SM1", Status: "queued", Segments: 2, Encoding: connector.EncodingUCS2, To: "+15005550006", Sender: "Acme"},
		{MessageID: "console-1", Status: "written", Segments: 1, Encoding: connector.EncodingGSM7},
		{MessageID: "x"},
	} {
		resp := ResponseFromReceipt(in, "id")
		if resp.GetConnectorId() != "id" {
			t.Errorf("connector id = %q", resp.GetConnectorId())
		}
		if out := ReceiptFromResponse(resp); !reflect.DeepEqual(out, in) {
			t.Errorf("round trip = %+v, want %+v", out, in)
		}
	}
	if got := ResponseFromReceipt(&connector.Receipt{Segments: math.MaxInt32 + 1}, "").GetSegments(); got != math.MaxInt32 {
		t.Errorf("segments are not clamped: %d", got)
	}
}

func TestMetadataRoundTrip(t *testing.T) {
	in := &connector.Metadata{
		ID: "x-sms", Target: "x", Name: map[string]string{"en": "X", "fr": "X fr"}, Description: map[string]string{"en": "d"},
		Logo: "data:,", LogoDark: "data:,dark", Readme: "# X", Version: "1.2.3",
		FormItems: []connector.FormItem{
			{Key: "mode", Label: "Mode", Type: connector.FormItemSelect, Required: true, Default: "a",
				SelectItems: []connector.SelectItem{{Value: "a", Title: "A"}, {Value: "b", Title: "B"}}},
			{Key: "secret", Label: "Secret", Type: connector.FormItemText, Confidential: true, Placeholder: "p", Description: "d"},
			{Key: "n", Label: "N", Type: connector.FormItemNumber, Default: 3.0},
		},
		ConfigSchema:   map[string]any{"type": "object", "required": []any{"mode"}},
		ConfigTemplate: map[string]any{"mode": "a"},
		UsageTypes:     []connector.UsageType{connector.UsageSignIn, connector.UsageGeneric},
	}
	resp, err := MetadataToProto(in)
	if err != nil {
		t.Fatal(err)
	}
	if resp.GetContractVersion() != ContractVersion {
		t.Errorf("contract version = %q", resp.GetContractVersion())
	}
	if out := MetadataFromProto(resp); !reflect.DeepEqual(out, in) {
		t.Errorf("round trip = %+v\nwant         %+v", out, in)
	}
}

func TestConfigViolationsRoundTrip(t *testing.T) {
	in := &connector.Error{Reason: connector.ReasonInvalidConfig, Message: "m", Violations: []connector.Violation{
		{Field: "", Description: "whole"}, {Field: "templates[0].content", Description: "a"}, {Field: "[1]", Description: "b"},
	}}
	prefixed := ConfigViolations(in)
	var got []string
	for _, v := range prefixed.Violations {
		got = append(got, v.Field)
	}
	if want := []string{"config", "config.templates[0].content", "config[1]"}; !reflect.DeepEqual(got, want) {
		t.Errorf("prefixed = %q, want %q", got, want)
	}
	if in.Violations[1].Field != "templates[0].content" {
		t.Error("ConfigViolations changed the connector's error")
	}
	UnprefixConfigViolations(prefixed)
	if !reflect.DeepEqual(prefixed.Violations, in.Violations) {
		t.Errorf("unprefixed = %+v, want %+v", prefixed.Violations, in.Violations)
	}
}

func TestJSONToStruct(t *testing.T) {
	tests := []struct {
		in      string
		wantNil bool
		wantErr bool
	}{
		{"", true, false},
		{" \n", true, false},
		{`{"a":1,"b":{"c":[true,null]}}`, false, false},
		{`{}`, false, false},
		{`[]`, true, true},
		{`"s"`, true, true},
		{`{"a":`, true, true},
	}
	for _, tt := range tests {
		s, err := JSONToStruct(json.RawMessage(tt.in))
		if (err != nil) != tt.wantErr || (s == nil) != tt.wantNil {
			t.Errorf("JSONToStruct(%q) = %v, %v", tt.in, s, err)
		}
	}
	raw, err := StructToJSON(&structpb.Struct{})
	if raw != nil || err != nil {
		t.Errorf("empty struct = %s, %v", raw, err)
	}
}

func TestStatusContextErrors(t *testing.T) {
	if got := roundTrip(context.Canceled); got.Reason != connector.ReasonCancelled {
		t.Errorf("canceled = %v", got)
	}
	if got := roundTrip(fmt.Errorf("x: %w", context.DeadlineExceeded)); got.Reason != connector.ReasonProviderTimeout {
		t.Errorf("deadline = %v", got)
	}
}
