package server_test

import (
	"context"
	"fmt"
	"math"
	"net"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap/zaptest/observer"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/structpb"

	"github.com/sms-connector/sms-connector/connector"
	"github.com/sms-connector/sms-connector/connector/guard"
	"github.com/sms-connector/sms-connector/connector/idempotency"
	"github.com/sms-connector/sms-connector/connector/limits"
	"github.com/sms-connector/sms-connector/connector/twilio"
	"github.com/sms-connector/sms-connector/connector/twilio/twiliotest"
	smsv1 "github.com/sms-connector/sms-connector/gen/connector/sms/v1"
	"github.com/sms-connector/sms-connector/sdk"
	"github.com/sms-connector/sms-connector/server"
)

// These tests run the stack a connector binary serves: a gRPC client over loopback, the server,
// the SDK's defences (idempotency, limits, the abuse guard with its default policy) and the
// real Twilio connector over HTTP to the Twilio emulator.

// hardStack is one running emulator + defended Twilio connector + server + client.
type hardStack struct {
	emu    *twiliotest.Server
	conn   *grpc.ClientConn
	client smsv1.SmsConnectorClient
	logs   *observer.ObservedLogs
}

// binaryDefences are the defences of the binary with its default flags.
func binaryDefences() sdk.Defences {
	return sdk.Defences{
		Guard: true, GuardOptions: guard.Options{Policy: guard.DefaultPolicy()}, IdempotencyWindow: idempotency.DefaultWindow,
		MaxConcurrentSends: limits.DefaultMaxConcurrent,
	}
}

// newHardStack serves the Twilio connector with options tw (its APIURL defaults to the
// emulator's; its MaxSegments to the binary's default) behind d.
func newHardStack(t *testing.T, d sdk.Defences, tw twilio.Options, emuOpts ...twiliotest.Option) *hardStack {
	t.Helper()
	emu := startEmulator(t, emuOpts...)
	if tw.APIURL == "" {
		tw.APIURL = emu.URL
	}
	if tw.MaxSegments == 0 {
		tw.MaxSegments = connector.DefaultMaxSegments
	}
	vendor, err := twilio.New(tw)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = vendor.Close() })
	conn, err := sdk.Defend(vendor, d)
	if err != nil {
		t.Fatal(err)
	}
	cc, logs := serveLoopback(t, conn)
	return &hardStack{emu: emu, conn: cc, client: smsv1.NewSmsConnectorClient(cc), logs: logs}
}

// badInput is one row of the bad-input matrix: a request (or raw wire bytes), and the code and
// ErrorInfo reason it must be answered with ("" for none: gRPC's own status). OK rows check
// what the emulator received instead.
type badInput struct {
	name   string
	req    func(t *testing.T, to string) *smsv1.SendMessageRequest
	raw    func(t *testing.T, to string) []byte
	code   codes.Code
	reason string
	field  string                          // a BadRequest field the answer must name
	body   func(t *testing.T, body string) // OK rows: the message the emulator accepted
}

// req is the matrix's valid request to to, edited by edit.
func req(edit func(r *smsv1.SendMessageRequest, t *testing.T)) func(t *testing.T, to string) *smsv1.SendMessageRequest {
	return func(t *testing.T, to string) *smsv1.SendMessageRequest {
		r := &smsv1.SendMessageRequest{
			To: to, UsageType: smsv1.UsageType_USAGE_TYPE_SIGN_IN,
			Payload: &smsv1.Payload{Code: "424242"}, Config: config(t),
		}
		if edit != nil {
			edit(r, t)
		}
		return r
	}
}

// withConfig is req with the config edited.
func withConfig(edit func(m map[string]any)) func(t *testing.T, to string) *smsv1.SendMessageRequest {
	return req(func(r *smsv1.SendMessageRequest, t *testing.T) { r.Config = config(t, edit) })
}

// withTemplates is req with the config's templates replaced.
func withTemplates(ts ...map[string]any) func(t *testing.T, to string) *smsv1.SendMessageRequest {
	return withConfig(func(m map[string]any) {
		var list []any
		for _, tpl := range ts {
			list = append(list, tpl)
		}
		m["templates"] = list
	})
}

// tpl is one template.
func tpl(usage, content string) map[string]any {
	return map[string]any{"usageType": usage, "content": content}
}

// withVariables is req with payload variables vars.
func withVariables(vars map[string]any) func(r *smsv1.SendMessageRequest, t *testing.T) {
	return func(r *smsv1.SendMessageRequest, t *testing.T) {
		s, err := structpb.NewStruct(vars)
		if err != nil {
			t.Fatal(err)
		}
		r.Payload.Variables = s
	}
}

// deep returns an object nested levels deep.
func deep(levels int) any {
	var v any = "x"
	for range levels {
		v = map[string]any{"n": v}
	}
	return v
}

// rawWith is the matrix's valid request to to in wire form, with more fields appended by add
// (a repeated scalar field's last value wins; a repeated message field merges).
func rawWith(add func(b []byte) []byte) func(t *testing.T, to string) []byte {
	return func(t *testing.T, to string) []byte {
		return add(wire(t, req(nil)(t, to)))
	}
}

// noSecret checks that body holds neither the auth token nor the API key secret.
func noSecret(t *testing.T, body string) {
	t.Helper()
	if strings.Contains(body, e2eToken) || strings.Contains(body, e2eKeySecret) {
		t.Errorf("the message carries a secret: %q", body)
	}
}

// usageNames are the usage types as Logto names them and as the proto does.
var usageNames = []struct {
	logto string
	proto smsv1.UsageType
}{
	{"Register", smsv1.UsageType_USAGE_TYPE_REGISTER},
	{"SignIn", smsv1.UsageType_USAGE_TYPE_SIGN_IN},
	{"ForgotPassword", smsv1.UsageType_USAGE_TYPE_FORGOT_PASSWORD},
	{"Generic", smsv1.UsageType_USAGE_TYPE_GENERIC},
	{"OrganizationInvitation", smsv1.UsageType_USAGE_TYPE_ORGANIZATION_INVITATION},
	{"UserPermissionValidation", smsv1.UsageType_USAGE_TYPE_USER_PERMISSION_VALIDATION},
	{"BindNewIdentifier", smsv1.UsageType_USAGE_TYPE_BIND_NEW_IDENTIFIER},
	{"MfaVerification", smsv1.UsageType_USAGE_TYPE_MFA_VERIFICATION},
	{"BindMfa", smsv1.UsageType_USAGE_TYPE_BIND_MFA},
}

// badInputs is the bad-input matrix. Its rows are also the table of docs/errors.md "Bad input"
// section, which TestBadInputMatrix checks.
func badInputs() []badInput {
	const (
		invalid = codes.InvalidArgument
		failed  = codes.FailedPrecondition
	)
	rows := []badInput{
		{name: "empty request", req: func(*testing.T, string) *smsv1.SendMessageRequest { return &smsv1.SendMessageRequest{} },
			code: invalid, reason: "INVALID_REQUEST", field: "usage_type"},
		{name: "`to` empty", req: req(func(r *smsv1.SendMessageRequest, _ *testing.T) { r.To = "" }),
			code: invalid, reason: "INVALID_PHONE_NUMBER", field: "to"},
		{name: "`to` words (`call me`)", req: req(func(r *smsv1.SendMessageRequest, _ *testing.T) { r.To = "call me" }),
			code: invalid, reason: "INVALID_PHONE_NUMBER", field: "to"},
		{name: "`to` with a NUL byte inside", req: req(func(r *smsv1.SendMessageRequest, _ *testing.T) { r.To = "+1415\x005550123" }),
			code: invalid, reason: "INVALID_PHONE_NUMBER", field: "to"},
		{name: "`to` with a tab inside", req: req(func(r *smsv1.SendMessageRequest, _ *testing.T) { r.To = "+1415\t5550123" }),
			code: invalid, reason: "INVALID_PHONE_NUMBER", field: "to"},
		{name: "`to` with 16 digits", req: req(func(r *smsv1.SendMessageRequest, _ *testing.T) { r.To = "+1234567890123456" }),
			code: invalid, reason: "INVALID_PHONE_NUMBER", field: "to"},
		{name: "`to` of 10,000 characters", req: req(func(r *smsv1.SendMessageRequest, _ *testing.T) { r.To = "+" + strings.Repeat("1", 9999) }),
			code: invalid, reason: "INVALID_PHONE_NUMBER", field: "to"},
		{name: "`to` in Arabic-Indic digits", req: req(func(r *smsv1.SendMessageRequest, _ *testing.T) { r.To = "+١٤١٥٥٥٥٠١٢٣" }),
			code: invalid, reason: "INVALID_PHONE_NUMBER", field: "to"},
		{name: "`to` starting with 0 after the +", req: req(func(r *smsv1.SendMessageRequest, _ *testing.T) { r.To = "+04155550123" }),
			code: invalid, reason: "INVALID_PHONE_NUMBER", field: "to"},
		{name: "`to` not UTF-8 (raw protobuf)", raw: rawWith(func(b []byte) []byte { return appendString(b, fieldTo, "+1415\xff5550123") }),
			code: invalid, reason: "INVALID_PHONE_NUMBER", field: "to"},
		{name: "`to` a premium-rate number (+44 909…)", req: req(func(r *smsv1.SendMessageRequest, _ *testing.T) { r.To = "+449098790000" }),
			code: failed, reason: "COUNTRY_NOT_PERMITTED"},
		{name: "`to` a satellite number (+881…)", req: req(func(r *smsv1.SendMessageRequest, _ *testing.T) { r.To = "+881631234567" }),
			code: failed, reason: "COUNTRY_NOT_PERMITTED"},
		{name: "`usage_type` unset", req: req(func(r *smsv1.SendMessageRequest, _ *testing.T) { r.UsageType = 0 }),
			code: invalid, reason: "INVALID_REQUEST", field: "usage_type"},
		{name: "`usage_type` unknown number 99", req: req(func(r *smsv1.SendMessageRequest, _ *testing.T) { r.UsageType = 99 }),
			code: invalid, reason: "INVALID_REQUEST", field: "usage_type"},
		{name: "`usage_type` negative number -1", req: req(func(r *smsv1.SendMessageRequest, _ *testing.T) { r.UsageType = -1 }),
			code: invalid, reason: "INVALID_REQUEST", field: "usage_type"},
		{name: "`payload` missing", req: req(func(r *smsv1.SendMessageRequest, _ *testing.T) { r.Payload = nil }),
			code: invalid, reason: "INVALID_REQUEST", field: "payload"},
		{name: "`payload.code` empty", req: req(func(r *smsv1.SendMessageRequest, _ *testing.T) { r.Payload.Code = "" }),
			code: invalid, reason: "INVALID_REQUEST", field: "payload.code"},
		{name: "`payload.code` of 65 characters", req: req(func(r *smsv1.SendMessageRequest, _ *testing.T) { r.Payload.Code = strings.Repeat("7", 65) }),
			code: invalid, reason: "INVALID_REQUEST", field: "payload.code"},
		{name: "`payload.code` not UTF-8 (raw protobuf)", raw: rawWith(func(b []byte) []byte {
			return appendMessage(b, fieldPayload, appendString(nil, fieldCode, "42\xc0\xaf42"))
		}), code: invalid, reason: "INVALID_REQUEST", field: "payload.code"},
		{name: "`payload.code` with a control character (BEL)", req: req(func(r *smsv1.SendMessageRequest, _ *testing.T) { r.Payload.Code = "42\a42" }),
			code: invalid, reason: "INVALID_REQUEST", field: "payload.code"},
		{name: "`payload.code` with a line break and a link", req: req(func(r *smsv1.SendMessageRequest, _ *testing.T) {
			r.Payload.Code = "4242\nLogin at https://evil.example"
		}), code: invalid, reason: "INVALID_REQUEST", field: "payload.code"},
		{name: "`payload.code` with a zero-width space", req: req(func(r *smsv1.SendMessageRequest, _ *testing.T) { r.Payload.Code = "42\u200b42" }),
			code: invalid, reason: "INVALID_REQUEST", field: "payload.code"},
		{name: "`payload.code` of 300 KiB (over `--max-request-bytes`)", req: req(func(r *smsv1.SendMessageRequest, _ *testing.T) {
			r.Payload.Code = strings.Repeat("9", 300<<10)
		}), code: codes.ResourceExhausted, reason: ""},
		{name: "`payload.code` empty and `payload.link` set, template with `{{code}}` only", req: req(func(r *smsv1.SendMessageRequest, _ *testing.T) {
			r.Payload = &smsv1.Payload{Link: "https://example.com/invite?token=abc"}
		}), code: invalid, reason: "INVALID_REQUEST", field: "payload.code"},
		{name: "`payload.link` set and `payload.code` empty, template with `{{link}}` only", req: func(t *testing.T, to string) *smsv1.SendMessageRequest {
			r := withTemplates(tpl("Generic", "Join: {{link}}"))(t, to)
			r.Payload = &smsv1.Payload{Code: "424242"}
			return r
		}, code: invalid, reason: "INVALID_REQUEST", field: "payload.link"},
		{name: "`payload.link` over http", req: req(func(r *smsv1.SendMessageRequest, _ *testing.T) { r.Payload.Link = "http://example.com/invite" }),
			code: invalid, reason: "INVALID_REQUEST", field: "payload.link"},
		{name: "`payload.link` relative (`/invite?token=abc`)", req: req(func(r *smsv1.SendMessageRequest, _ *testing.T) { r.Payload.Link = "/invite?token=abc" }),
			code: invalid, reason: "INVALID_REQUEST", field: "payload.link"},
		{name: "`payload.link` `javascript:alert(1)`", req: req(func(r *smsv1.SendMessageRequest, _ *testing.T) { r.Payload.Link = "javascript:alert(1)" }),
			code: invalid, reason: "INVALID_REQUEST", field: "payload.link"},
		{name: "`payload.link` with a user name (`https://bank.example@evil.example/`)", req: req(func(r *smsv1.SendMessageRequest, _ *testing.T) {
			r.Payload.Link = "https://bank.example@evil.example/"
		}), code: invalid, reason: "INVALID_REQUEST", field: "payload.link"},
		{name: "`payload.link` with a line break and text", req: req(func(r *smsv1.SendMessageRequest, _ *testing.T) {
			r.Payload.Link = "https://example.com/\nCall +1 900 555 0100"
		}), code: invalid, reason: "INVALID_REQUEST", field: "payload.link"},
		{name: "`payload.link` of 2,049 bytes", req: req(func(r *smsv1.SendMessageRequest, _ *testing.T) {
			r.Payload.Link = "https://example.com/" + strings.Repeat("a", 2029)
		}), code: invalid, reason: "INVALID_REQUEST", field: "payload.link"},
		{name: "`payload.link` not UTF-8 (raw protobuf)", raw: rawWith(func(b []byte) []byte {
			return appendMessage(b, fieldPayload, appendString(appendString(nil, fieldCode, "4242"), fieldLink, "https://example.com/\xff"))
		}), code: invalid, reason: "INVALID_REQUEST", field: "payload.link"},
		{name: "`payload.locale` of 36 characters", req: req(func(r *smsv1.SendMessageRequest, _ *testing.T) { r.Payload.Locale = strings.Repeat("a", 36) }),
			code: invalid, reason: "INVALID_REQUEST", field: "payload.locale"},
		{name: "`payload.locale` `{{authToken}}`", req: req(func(r *smsv1.SendMessageRequest, _ *testing.T) { r.Payload.Locale = "{{authToken}}" }),
			code: invalid, reason: "INVALID_REQUEST", field: "payload.locale"},
		{name: "`payload.locale` not UTF-8 (raw protobuf)", raw: rawWith(func(b []byte) []byte {
			return appendMessage(b, fieldPayload, appendString(nil, fieldLocale, "fr\xff"))
		}), code: invalid, reason: "INVALID_REQUEST", field: "payload.locale"},
		{name: "`payload.ui_locales` with 17 tags", req: req(func(r *smsv1.SendMessageRequest, _ *testing.T) {
			r.Payload.UiLocales = slices.Repeat([]string{"fr"}, 17)
		}), code: invalid, reason: "INVALID_REQUEST", field: "payload.ui_locales"},
		{name: "`payload.ui_locales` entry `{{authToken}}`", req: req(func(r *smsv1.SendMessageRequest, _ *testing.T) {
			r.Payload.UiLocales = []string{"{{authToken}}"}
		}), code: invalid, reason: "INVALID_REQUEST", field: "payload.ui_locales[0]"},
		{name: "`payload.ui_locales` entry empty", req: req(func(r *smsv1.SendMessageRequest, _ *testing.T) { r.Payload.UiLocales = []string{"fr", ""} }),
			code: invalid, reason: "INVALID_REQUEST", field: "payload.ui_locales[1]"},
		{name: "`payload.variables` with a string over 1 KiB", req: req(withVariables(map[string]any{"big": strings.Repeat("v", 1025)})),
			code: invalid, reason: "INVALID_REQUEST", field: "payload.variables.big"},
		{name: "`payload.variables` over 8 KiB as JSON", req: req(withVariables(func() map[string]any {
			m := map[string]any{}
			for i := range 10 {
				m[fmt.Sprint("v", i)] = strings.Repeat("v", 900)
			}
			return m
		}())), code: invalid, reason: "INVALID_REQUEST", field: "payload.variables"},
		{name: "`payload.variables` nested 9 levels", req: req(withVariables(map[string]any{"d": deep(8)})),
			code: invalid, reason: "INVALID_REQUEST", field: "payload.variables"},
		{name: "`payload.variables` nested 5,000 levels (raw protobuf, past protobuf's recursion limit)", raw: rawWith(func(b []byte) []byte {
			return appendMessage(b, fieldPayload, appendMessage(nil, fieldVariables, nestedStruct(5000)))
		}), code: invalid, reason: "INVALID_REQUEST", field: "payload.variables"},
		{name: "`payload.variables` value not UTF-8 (raw protobuf)", raw: rawWith(func(b []byte) []byte {
			return appendMessage(b, fieldPayload, appendMessage(nil, fieldVariables, structWithString("app", "Ac\xffme")))
		}), code: invalid, reason: "INVALID_REQUEST", field: "payload.variables"},
		{name: "`idempotency_key` of 129 characters", req: req(func(r *smsv1.SendMessageRequest, _ *testing.T) { r.IdempotencyKey = strings.Repeat("k", 129) }),
			code: invalid, reason: "INVALID_REQUEST", field: "idempotency_key"},
		{name: "`client_ip` not an address", req: req(func(r *smsv1.SendMessageRequest, _ *testing.T) { r.ClientIp = "localhost" }),
			code: invalid, reason: "INVALID_REQUEST", field: "client_ip"},
		{name: "`client_ip` 999.1.1.1", req: req(func(r *smsv1.SendMessageRequest, _ *testing.T) { r.ClientIp = "999.1.1.1" }),
			code: invalid, reason: "INVALID_REQUEST", field: "client_ip"},
		{name: "`client_ip` with a port", req: req(func(r *smsv1.SendMessageRequest, _ *testing.T) { r.ClientIp = "203.0.113.7:443" }),
			code: invalid, reason: "INVALID_REQUEST", field: "client_ip"},
		{name: "bytes that are not protobuf", raw: func(*testing.T, string) []byte { return []byte{0x0a, 0xff, 0xff, 0xff} },
			code: invalid, reason: "INVALID_REQUEST"},
		{name: "config: `accountSID` a number", req: withConfig(func(m map[string]any) { m["accountSID"] = 123 }),
			code: invalid, reason: "INVALID_CONFIG", field: "config.accountSID"},
		{name: "config: `authToken` a boolean", req: withConfig(func(m map[string]any) { m["authToken"] = true }),
			code: invalid, reason: "INVALID_CONFIG", field: "config.authToken"},
		{name: "config: `from` an object (`{\"$ne\": 1}`)", req: withConfig(func(m map[string]any) { m["from"] = map[string]any{"$ne": 1} }),
			code: invalid, reason: "INVALID_CONFIG", field: "config.from"},
		{name: "config: `templates` a string", req: withConfig(func(m map[string]any) { m["templates"] = "{{code}}" }),
			code: invalid, reason: "INVALID_CONFIG", field: "config.templates"},
		{name: "config: a template's `content` a number", req: withTemplates(map[string]any{"usageType": "Generic", "content": 42}),
			code: invalid, reason: "INVALID_CONFIG", field: "config.templates[0].content"},
		{name: "config: unknown field `acountSID`", req: withConfig(func(m map[string]any) { m["acountSID"] = twiliotest.SandboxAccountSID }),
			code: invalid, reason: "INVALID_CONFIG", field: "config.acountSID"},
		{name: "config: unknown template field `subject`", req: withTemplates(map[string]any{"usageType": "Generic", "content": "{{code}}", "subject": "x"}),
			code: invalid, reason: "INVALID_CONFIG", field: "config.templates[0].subject"},
		{name: "config: `validityPeriod` -1", req: withConfig(func(m map[string]any) { m["validityPeriod"] = -1 }),
			code: invalid, reason: "INVALID_CONFIG", field: "config.validityPeriod"},
		{name: "config: `validityPeriod` 1e12", req: withConfig(func(m map[string]any) { m["validityPeriod"] = 1e12 }),
			code: invalid, reason: "INVALID_CONFIG", field: "config.validityPeriod"},
		{name: "config: `validityPeriod` 1.5", req: withConfig(func(m map[string]any) { m["validityPeriod"] = 1.5 }),
			code: invalid, reason: "INVALID_CONFIG", field: "config.validityPeriod"},
		{name: "config: `validityPeriod` NaN", req: withConfig(func(m map[string]any) { m["validityPeriod"] = math.NaN() }),
			code: invalid, reason: "INVALID_CONFIG", field: "config.validityPeriod"},
		{name: "config: `validityPeriod` a string", req: withConfig(func(m map[string]any) { m["validityPeriod"] = "600" }),
			code: invalid, reason: "INVALID_CONFIG", field: "config.validityPeriod"},
		{name: "config: `host` another site", req: withConfig(func(m map[string]any) { m["host"] = "evil.example" }),
			code: invalid, reason: "INVALID_CONFIG", field: "config.host"},
		{name: "config: `host` `api.twilio.com.evil.example`", req: withConfig(func(m map[string]any) { m["host"] = "api.twilio.com.evil.example" }),
			code: invalid, reason: "INVALID_CONFIG", field: "config.host"},
		{name: "config: `authToken` with a space", req: withConfig(func(m map[string]any) { m["authToken"] = "abc def" }),
			code: invalid, reason: "INVALID_CONFIG", field: "config.authToken"},
		{name: "config: template `content` over 1600 characters", req: withTemplates(tpl("Generic", strings.Repeat("x", 1600)+"{{code}}")),
			code: invalid, reason: "INVALID_CONFIG", field: "config.templates[0].content"},
		{name: "config: template with neither `{{code}}` nor `{{link}}`", req: withTemplates(tpl("Generic", "Hello {{links}}")),
			code: invalid, reason: "INVALID_CONFIG", field: "config.templates[0].content"},
		{name: "config: not UTF-8 inside (raw protobuf)", raw: rawWith(func(b []byte) []byte {
			return appendMessage(b, fieldConfig, structWithString("from", "+1500\xff5550006"))
		}), code: invalid, reason: "INVALID_REQUEST", field: "config"},
		{name: "`config_json` together with `config`", req: req(func(r *smsv1.SendMessageRequest, t *testing.T) { r.ConfigJson = configJSON(t) }),
			code: invalid, reason: "INVALID_REQUEST", field: "config_json"},
		{name: "`config_json` a JSON array", req: req(func(r *smsv1.SendMessageRequest, _ *testing.T) { r.Config, r.ConfigJson = nil, "[]" }),
			code: invalid, reason: "INVALID_CONFIG", field: "config_json"},
		{name: "`config_json` not JSON (cut short)", req: req(func(r *smsv1.SendMessageRequest, t *testing.T) {
			r.Config, r.ConfigJson = nil, configJSON(t)[:40]
		}), code: invalid, reason: "INVALID_CONFIG", field: "config_json"},
		{name: "`config_json` without `accountSID`", req: req(func(r *smsv1.SendMessageRequest, t *testing.T) {
			r.Config, r.ConfigJson = nil, configJSON(t, func(m map[string]any) { delete(m, "accountSID") })
		}), code: invalid, reason: "INVALID_CONFIG", field: "config_json.accountSID"},
		{name: "`config_json` not UTF-8 (raw protobuf)", raw: func(t *testing.T, to string) []byte {
			r := req(nil)(t, to)
			r.Config = nil // alone, so that "together with config" cannot answer for it
			return appendString(wire(t, r), fieldConfigJSON, "{\"from\": \"+1500\xff5550006\"}")
		}, code: invalid, reason: "INVALID_REQUEST", field: "config_json"},
		{name: "no config, and no default config on the server", req: req(func(r *smsv1.SendMessageRequest, _ *testing.T) { r.Config = nil }),
			code: failed, reason: "CONFIG_MISSING"},
		{name: "template rendering 11 segments of GSM-7 (over `--max-segments` 10)", req: withTemplates(tpl("Generic", strings.Repeat("x", 1590)+"{{code}}")),
			code: failed, reason: "MESSAGE_TOO_LONG"},
		{name: "template rendering 11 segments of UCS-2", req: withTemplates(tpl("Generic", strings.Repeat("Ж", 700)+"{{code}}")),
			code: failed, reason: "MESSAGE_TOO_LONG"},
		{name: "variables rendering 11 segments", req: func(t *testing.T, to string) *smsv1.SendMessageRequest {
			r := withTemplates(tpl("Generic", "{{code}} {{a}} {{b}}"))(t, to)
			withVariables(map[string]any{"a": strings.Repeat("a", 1000), "b": strings.Repeat("b", 540)})(r, t)
			return r
		}, code: failed, reason: "MESSAGE_TOO_LONG"},
		{name: "template `{{authToken}}` (renders empty)", req: withTemplates(tpl("Generic", "[{{authToken}}] {{code}}")),
			code: codes.OK, body: func(t *testing.T, body string) {
				if body != "[] 424242" {
					t.Errorf("body %q, want the placeholder empty", body)
				}
			}},
		{name: "template `{{config.authToken}}` and `{{ apiKeySecret }}` (render empty)", req: withConfig(func(m map[string]any) {
			m["apiKeySID"], m["apiKeySecret"] = e2eKeySID, e2eKeySecret
			m["templates"] = []any{tpl("Generic", "[{{config.authToken}}|{{ apiKeySecret }}|{{config.apiKeySecret}}] {{code}}")}
		}), code: codes.OK, body: func(t *testing.T, body string) {
			if body != "[||] 424242" {
				t.Errorf("body %q, want the placeholders empty", body)
			}
		}},
		{name: "`payload.code` `{{authToken}}` (sent as typed, not rendered again)", req: req(func(r *smsv1.SendMessageRequest, _ *testing.T) { r.Payload.Code = "{{authToken}}" }),
			code: codes.OK, body: func(t *testing.T, body string) {
				if body != "Sign in to  with {{authToken}}" {
					t.Errorf("body %q, want the code as typed", body)
				}
			}},
		{name: "`payload.link` only, template with `{{link}}`", req: func(t *testing.T, to string) *smsv1.SendMessageRequest {
			r := withTemplates(tpl("Generic", "Join Acme: {{link}}"))(t, to)
			r.UsageType = smsv1.UsageType_USAGE_TYPE_ORGANIZATION_INVITATION
			r.Payload = &smsv1.Payload{Link: "https://example.com/invite?token=abc"}
			return r
		}, code: codes.OK, body: func(t *testing.T, body string) {
			if body != "Join Acme: https://example.com/invite?token=abc" {
				t.Errorf("body %q, want the link", body)
			}
		}},
		{name: "`payload.ui_locales` picks the template of a later preference", req: func(t *testing.T, to string) *smsv1.SendMessageRequest {
			r := withTemplates(tpl("Generic", "{{code}}"), map[string]any{"usageType": "Generic", "locale": "de", "content": "Ihr Code: {{code}}"})(t, to)
			r.Payload.Locale, r.Payload.UiLocales = "ja", []string{"ko", "de-AT"}
			return r
		}, code: codes.OK, body: func(t *testing.T, body string) {
			if body != "Ihr Code: 424242" {
				t.Errorf("body %q, want the German template", body)
			}
		}},
		{name: "variable `{{code}}{{config.authToken}}` (sent as typed)", req: req(withVariables(map[string]any{"application": map[string]any{"name": "{{code}}{{config.authToken}}"}})),
			code: codes.OK, body: func(t *testing.T, body string) {
				if body != "Sign in to {{code}}{{config.authToken}} with 424242" {
					t.Errorf("body %q, want the variable as typed", body)
				}
			}},
	}
	for _, u := range usageNames {
		var ts []map[string]any
		for _, other := range usageNames {
			if other.logto != u.logto && other.logto != "Generic" {
				ts = append(ts, tpl(other.logto, other.logto+" {{code}}"))
			}
		}
		usage := u.proto
		rows = append(rows, badInput{
			name: fmt.Sprintf("`usage_type` %s: no template for it, no Generic", u.proto),
			req: func(t *testing.T, to string) *smsv1.SendMessageRequest {
				r := withTemplates(ts...)(t, to)
				r.UsageType = usage
				return r
			},
			code: failed, reason: "TEMPLATE_NOT_FOUND",
		})
	}
	return rows
}

// TestBadInputMatrix sends every row of badInputs over gRPC to the binary's stack and checks
// its code, reason and field, that nothing reached the emulator unless the row succeeds, that
// no answer is UNKNOWN or carries a secret, that nothing panicked, and that docs/errors.md
// lists the row with the same code and reason.
func TestBadInputMatrix(t *testing.T) {
	s := newHardStack(t, binaryDefences(), twilio.Options{})
	readme, err := os.ReadFile("../docs/errors.md")
	if err != nil {
		t.Fatal(err)
	}
	rows := badInputs()
	if len(rows) < 40 {
		t.Fatalf("%d rows; the matrix must have at least 40", len(rows))
	}
	seen := map[string]bool{}
	for i, row := range rows {
		if seen[row.name] {
			t.Fatalf("two rows are named %q", row.name)
		}
		seen[row.name] = true
		t.Run(row.name, func(t *testing.T) {
			to := fmt.Sprintf("+1415555%04d", i) // one recipient per row: the guard's windows stay apart
			before, msgs := s.emu.Requests(), len(s.emu.Messages())
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			var err error
			if row.raw != nil {
				_, err = sendRaw(ctx, s.conn, row.raw(t, to))
			} else {
				_, err = s.client.SendMessage(ctx, row.req(t, to))
			}
			st := status.Convert(err)
			if st.Code() == codes.Unknown {
				t.Fatalf("UNKNOWN: %v", err)
			}
			if st.Code() != row.code {
				t.Fatalf("code %s (%q), want %s", st.Code(), st.Message(), row.code)
			}
			info, _ := details(st)
			switch {
			case row.code == codes.OK:
			case row.reason == "" && info != nil:
				t.Errorf("ErrorInfo %v, want none (gRPC's own status)", info)
			case row.reason != "" && (info == nil || info.Reason != row.reason || info.Domain != server.ErrorDomain):
				t.Errorf("ErrorInfo %v, want reason %s", info, row.reason)
			}
			if row.field != "" && !hasField(st, row.field) {
				t.Errorf("BadRequest lacks the field %q: %v", row.field, st.Details())
			}
			if s := st.Message() + fmt.Sprint(st.Details()); strings.Contains(s, e2eToken) || strings.Contains(s, e2eKeySecret) {
				t.Errorf("the answer carries a secret: %s", s)
			}
			if row.code == codes.OK {
				all := s.emu.Messages()
				if len(all) != msgs+1 {
					t.Fatalf("the emulator accepted %d messages, want 1", len(all)-msgs)
				}
				noSecret(t, all[len(all)-1].Body)
				row.body(t, all[len(all)-1].Body)
			} else if n := s.emu.Requests() - before; n != 0 {
				t.Errorf("%d requests reached the emulator; want none", n)
			}

			reason := row.reason
			switch {
			case row.code == codes.OK:
				reason = "— (sent)"
			case reason == "":
				reason = "— (gRPC's own status, no ErrorInfo)"
			}
			line := fmt.Sprintf("| %s | %s | %s |", row.name, codeName(row.code), reason)
			if !strings.Contains(string(readme), line+"\n") {
				t.Errorf("docs/errors.md lacks the row\n%s", line)
			}
		})
	}
	for _, e := range s.logs.All() {
		if strings.Contains(strings.ToLower(e.Message), "panic") {
			t.Errorf("a handler panicked: %s %v", e.Message, e.ContextMap())
		}
	}
}

// codeName is a code as docs/errors.md writes it: INVALID_ARGUMENT.
func codeName(c codes.Code) string {
	if c == codes.OK {
		return "OK"
	}
	var b strings.Builder
	for i, r := range c.String() {
		if i > 0 && r >= 'A' && r <= 'Z' {
			b.WriteByte('_')
		}
		b.WriteRune(r)
	}
	return strings.ToUpper(b.String())
}

// hasField reports whether st's BadRequest names field.
func hasField(st *status.Status, field string) bool {
	for _, d := range st.Details() {
		if br, ok := d.(*errdetails.BadRequest); ok {
			for _, v := range br.GetFieldViolations() {
				if v.GetField() == field {
					return true
				}
			}
		}
	}
	return false
}

// TestUndecodableRequests covers what the server's codec does beyond the matrix: a
// ValidateConfig whose config is not UTF-8, and a client that sends the codec's own mark.
func TestUndecodableRequests(t *testing.T) {
	s := newHardStack(t, binaryDefences(), twilio.Options{})
	ctx := context.Background()

	resp := &smsv1.ValidateConfigResponse{}
	b := appendMessage(nil, fieldValidateConfig, structWithString("authToken", "\xff"))
	err := s.conn.Invoke(ctx, smsv1.SmsConnector_ValidateConfig_FullMethodName, rawBytes(b), resp, grpc.ForceCodecV2(rawCodec{}))
	if st := status.Convert(err); st.Code() != codes.InvalidArgument || !hasField(st, "config") {
		t.Errorf("ValidateConfig with a config that is not UTF-8: %v", err)
	}

	// A request carrying field 536870911 (the codec's mark) as a client wrote it is an ordinary
	// request: the mark is dropped and the message is sent.
	forged := appendMessage(wire(t, req(nil)(t, "+14155550199")), 536870911, []byte("\x0a\x04\x0a\x02to"))
	if _, err := sendRaw(ctx, s.conn, forged); err != nil {
		t.Errorf("a request with a forged mark: %v", err)
	}
	if n := len(s.emu.Messages()); n != 1 {
		t.Errorf("the emulator accepted %d messages, want 1", n)
	}
}

// faultRow is one row of the fault matrix.
type faultRow struct {
	name     string
	setup    func(s *hardStack)
	tw       twilio.Options
	deadline time.Duration // of the RPC; 0: 30s
	code     codes.Code
	reason   string        // "" for any (the client's own DEADLINE_EXCEEDED carries none)
	retry    time.Duration // the RetryInfo delay it must carry; 0: none
	requests int           // how many requests reached the emulator; -1: not counted
	messages int           // how many it accepted
}

// TestFaultMatrix: what a misbehaving Twilio gives over gRPC, through the binary's stack. Only
// what Twilio provably never processed (429) is retried, at most MaxAttempts times, with the
// delay Twilio asks for; every ambiguous failure is answered at once and never retried.
func TestFaultMatrix(t *testing.T) {
	fault := func(f twiliotest.Fault, times int) func(*hardStack) {
		return func(s *hardStack) { s.emu.InjectFault(f, times) }
	}
	tooMany := func(after time.Duration) twiliotest.Fault {
		return twiliotest.Fault{Kind: twiliotest.FaultTooManyRequests, RetryAfter: after}
	}
	closed := func() string { // a port nobody listens on
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			panic(err)
		}
		defer l.Close()
		return "http://" + l.Addr().String()
	}
	rows := []faultRow{
		{name: "Twilio slower than the RPC deadline", setup: func(s *hardStack) { s.emu.SetLatency(time.Minute) },
			deadline: 300 * time.Millisecond, code: codes.DeadlineExceeded, requests: 1},
		{name: "Twilio slower than --twilio-timeout", setup: func(s *hardStack) { s.emu.SetLatency(time.Minute) },
			tw: twilio.Options{Timeout: 200 * time.Millisecond}, code: codes.DeadlineExceeded, reason: "PROVIDER_TIMEOUT", requests: 1},
		{name: "502 with an HTML page", setup: fault(twiliotest.Fault{Kind: twiliotest.FaultServerErrorHTML}, -1),
			code: codes.Unavailable, reason: "PROVIDER_OUTCOME_UNKNOWN", requests: 1},
		{name: "503 with an HTML page and Retry-After", setup: fault(twiliotest.Fault{Kind: twiliotest.FaultServerErrorHTML, Status: 503, RetryAfter: time.Second}, -1),
			code: codes.Unavailable, reason: "PROVIDER_OUTCOME_UNKNOWN", requests: 1},
		{name: "500 with Twilio's error JSON", setup: fault(twiliotest.Fault{Kind: twiliotest.FaultServerErrorJSON}, -1),
			code: codes.Unavailable, reason: "PROVIDER_OUTCOME_UNKNOWN", requests: 1},
		{name: "connection reset", setup: fault(twiliotest.Fault{Kind: twiliotest.FaultConnectionReset}, -1),
			code: codes.Unavailable, reason: "PROVIDER_OUTCOME_UNKNOWN", requests: 1},
		{name: "3xx without a message", setup: fault(twiliotest.Fault{Kind: twiliotest.FaultRedirect}, -1),
			code: codes.Internal, reason: "PROVIDER_INVALID_RESPONSE", requests: 1},
		{name: "429 storm", setup: fault(tooMany(0), -1),
			code: codes.Unavailable, reason: "PROVIDER_RATE_LIMITED", retry: twilio.DefaultRetryAfter, requests: twilio.DefaultMaxAttempts},
		{name: "429, then success", setup: fault(tooMany(0), 1), code: codes.OK, requests: 2, messages: 1},
		{name: "429 twice, then success", setup: fault(tooMany(0), 2), code: codes.OK, requests: 3, messages: 1},
		{name: "429 with Retry-After 1s, then success", setup: fault(tooMany(time.Second), 1), code: codes.OK, requests: 2, messages: 1},
		// Retry-After honoured: 5 s do not fit in a 3 s deadline, so there is no retry at all
		// (a backoff alone, at most 250 ms, would have retried), and the caller is told to wait 5 s.
		{name: "429 with Retry-After 5s, RPC deadline 3s", setup: fault(tooMany(5*time.Second), -1), deadline: 3 * time.Second,
			code: codes.Unavailable, reason: "PROVIDER_RATE_LIMITED", retry: 5 * time.Second, requests: 1},
		{name: "429 with Retry-After 1 min (longer than the connector waits)", setup: fault(tooMany(time.Minute), -1),
			code: codes.Unavailable, reason: "PROVIDER_RATE_LIMITED", retry: time.Minute, requests: 1},
		{name: "Twilio unreachable (connection refused)", tw: twilio.Options{APIURL: closed()},
			code: codes.Unavailable, reason: "PROVIDER_UNAVAILABLE", retry: twilio.DefaultRetryAfter, requests: -1},
	}
	for i, row := range rows {
		t.Run(row.name, func(t *testing.T) {
			tw := row.tw
			tw.MaxAttempts = twilio.DefaultMaxAttempts
			s := newHardStack(t, binaryDefences(), tw)
			if row.setup != nil {
				row.setup(s)
			}
			deadline := row.deadline
			if deadline == 0 {
				deadline = 30 * time.Second
			}
			ctx, cancel := context.WithTimeout(context.Background(), deadline)
			defer cancel()
			_, err := s.client.SendMessage(ctx, req(nil)(t, fmt.Sprintf("+1628555%04d", i)))
			st := status.Convert(err)
			if st.Code() != row.code {
				t.Fatalf("code %s (%q), want %s", st.Code(), st.Message(), row.code)
			}
			info, retry := details(st)
			if row.reason != "" && (info == nil || info.Reason != row.reason) {
				t.Errorf("ErrorInfo %v, want reason %s", info, row.reason)
			}
			switch {
			case row.retry == 0 && retry != nil:
				t.Errorf("RetryInfo %v, want none", retry)
			case row.retry != 0 && (retry == nil || retry.GetRetryDelay().AsDuration() != row.retry):
				t.Errorf("RetryInfo %v, want %v", retry, row.retry)
			}
			if row.requests >= 0 && s.emu.Requests() != row.requests {
				t.Errorf("%d requests reached the emulator, want %d", s.emu.Requests(), row.requests)
			}
			if n := len(s.emu.Messages()); n != row.messages {
				t.Errorf("the emulator accepted %d messages, want %d", n, row.messages)
			}
		})
	}
}

// TestIdempotentSendUnderConcurrency: 1000 concurrent SendMessage calls with one idempotency
// key create one message and get 1000 identical answers. The emulator is slow enough that the
// calls overlap; duplicates wait for the first and hold no concurrency slot (the limit is 256).
func TestIdempotentSendUnderConcurrency(t *testing.T) {
	s := newHardStack(t, binaryDefences(), twilio.Options{})
	s.emu.SetLatency(200 * time.Millisecond)
	const calls = 1000
	r := req(func(r *smsv1.SendMessageRequest, _ *testing.T) { r.IdempotencyKey = "signin-7f3a" })(t, "+14155550123")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var (
		wg    sync.WaitGroup
		start = make(chan struct{})
		resps = make([]*smsv1.SendMessageResponse, calls)
		errs  = make([]error, calls)
	)
	for i := range calls {
		wg.Go(func() {
			<-start
			resps[i], errs[i] = s.client.SendMessage(ctx, proto.Clone(r).(*smsv1.SendMessageRequest))
		})
	}
	close(start)
	wg.Wait()
	for i := range calls {
		if errs[i] != nil {
			t.Fatalf("call %d: %v", i, errs[i])
		}
		if !proto.Equal(resps[i], resps[0]) {
			t.Fatalf("call %d answered %v, call 0 %v", i, resps[i], resps[0])
		}
	}
	msgs := s.emu.Messages()
	if len(msgs) != 1 || s.emu.Requests() != 1 || msgs[0].Sid != resps[0].MessageId {
		t.Fatalf("the emulator got %d requests and accepted %d messages (%v); want exactly one, %s", s.emu.Requests(), len(msgs), msgs, resps[0].MessageId)
	}

	// The same key with another code is refused, and nothing is sent.
	other := proto.Clone(r).(*smsv1.SendMessageRequest)
	other.Payload.Code = "111111"
	_, err := s.client.SendMessage(ctx, other)
	if st := status.Convert(err); st.Code() != codes.InvalidArgument || !hasField(st, "idempotency_key") {
		t.Errorf("the key reused for another code: %v", err)
	}
	if s.emu.Requests() != 1 {
		t.Errorf("the emulator got %d requests, want 1", s.emu.Requests())
	}
}

// TestAbuseRefusalOverGRPC: the guard's default policy refuses a second code to the same
// recipient within 30 s with RESOURCE_EXHAUSTED RATE_LIMITED and a RetryInfo, before Twilio;
// a failed send did not start the cooldown.
func TestAbuseRefusalOverGRPC(t *testing.T) {
	s := newHardStack(t, binaryDefences(), twilio.Options{})
	ctx := context.Background()
	s.emu.InjectFault(twiliotest.Fault{Kind: twiliotest.FaultServerErrorJSON, Status: 400}, 1) // a refusal: nothing sent
	if _, err := s.client.SendMessage(ctx, req(nil)(t, "+14155550142")); status.Code(err) == codes.OK {
		t.Fatal("the injected refusal did not fail the send")
	}
	if _, err := s.client.SendMessage(ctx, req(nil)(t, "+14155550142")); err != nil {
		t.Fatalf("first accepted send: %v (a refused send must not start the cooldown)", err)
	}
	_, err := s.client.SendMessage(ctx, req(nil)(t, "+14155550142"))
	st := status.Convert(err)
	info, retry := details(st)
	if st.Code() != codes.ResourceExhausted || info == nil || info.Reason != string(connector.ReasonRateLimited) ||
		retry == nil || retry.GetRetryDelay().AsDuration() <= 0 || retry.GetRetryDelay().AsDuration() > 30*time.Second {
		t.Fatalf("second send: %s %v %v, want RESOURCE_EXHAUSTED RATE_LIMITED with a RetryInfo of at most 30s", st.Code(), info, retry)
	}
	if s.emu.Requests() != 2 || len(s.emu.Messages()) != 1 {
		t.Errorf("the emulator got %d requests, %d messages; want 2 and 1", s.emu.Requests(), len(s.emu.Messages()))
	}
}

// TestPremiumRateNumbersOverGRPC: with the binary's default policy, premium-rate numbers are
// refused before Twilio, COUNTRY_NOT_PERMITTED when libphonenumber calls them premium rate,
// INVALID_PHONE_NUMBER (BadRequest field "to") when a digit too many leaves them without a
// type; ordinary mobiles of the same countries are sent.
func TestPremiumRateNumbersOverGRPC(t *testing.T) {
	s := newHardStack(t, binaryDefences(), twilio.Options{})
	ctx := context.Background()
	tests := []struct {
		to     string
		code   codes.Code
		reason string
	}{
		{"+19002345678", codes.FailedPrecondition, "COUNTRY_NOT_PERMITTED"},
		{"+499001234567", codes.FailedPrecondition, "COUNTRY_NOT_PERMITTED"},
		{"+449012345678", codes.FailedPrecondition, "COUNTRY_NOT_PERMITTED"},
		{"+1900234567890", codes.InvalidArgument, "INVALID_PHONE_NUMBER"},
		{"+4990012345678", codes.InvalidArgument, "INVALID_PHONE_NUMBER"},
		{"+4490123456789", codes.InvalidArgument, "INVALID_PHONE_NUMBER"},
		{"+4915123456789", codes.OK, ""},
		{"+447400123456", codes.OK, ""},
	}
	sent := 0
	for _, tt := range tests {
		_, err := s.client.SendMessage(ctx, req(nil)(t, tt.to))
		st := status.Convert(err)
		info, _ := details(st)
		if tt.code == codes.OK {
			if err != nil {
				t.Errorf("%s: %v, want it sent", tt.to, err)
			}
			sent++
			continue
		}
		if st.Code() != tt.code || info == nil || info.Reason != tt.reason {
			t.Errorf("%s: %s %v, want %s %s", tt.to, st.Code(), info, tt.code, tt.reason)
		}
		if tt.reason == "INVALID_PHONE_NUMBER" && !hasField(st, "to") {
			t.Errorf("%s: no BadRequest for field to: %v", tt.to, st.Details())
		}
		if strings.Contains(st.Message(), strings.TrimPrefix(tt.to, "+")) {
			t.Errorf("%s: the status message carries the number: %q", tt.to, st.Message())
		}
	}
	if n := s.emu.Requests(); n != sent {
		t.Errorf("the emulator got %d requests, want %d (the mobiles only)", n, sent)
	}
}
