package server_test

import (
	"context"
	"fmt"
	"net"
	"slices"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/types/known/structpb"

	"github.com/sms-connector/sms-connector/connector"
	"github.com/sms-connector/sms-connector/connector/twilio"
	"github.com/sms-connector/sms-connector/connector/twilio/twiliotest"
	smsv1 "github.com/sms-connector/sms-connector/gen/connector/sms/v1"
	"github.com/sms-connector/sms-connector/server"
)

// These tests run the whole path: a gRPC client over loopback, the server, the Twilio connector
// and the real twilio-go client over HTTP to the Twilio emulator.

// e2eToken is a distinctive auth token: no log line, error or detail may ever contain it.
const e2eToken = "E2eAuThToKeN0E2eAuThToKeN0E2eAuT"

// An API key of the emulator's account; its secret must never show either.
const (
	e2eKeySID    = "SK" + "0123456789abcdef0123456789abcdef"
	e2eKeySecret = "E2eApIsEcReT0E2eApIsEcReT0E2eApI"
)

// stack is one running emulator + connector + server + client, with debug logs captured.
type stack struct {
	emu    *twiliotest.Server
	client smsv1.SmsConnectorClient
	logs   *observer.ObservedLogs
}

func newStack(t *testing.T, opts ...twiliotest.Option) *stack {
	t.Helper()
	emu := startEmulator(t, opts...)
	conn, err := twilio.New(twilio.Options{APIURL: emu.URL})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	cc, logs := serveLoopback(t, conn)
	return &stack{emu: emu, client: smsv1.NewSmsConnectorClient(cc), logs: logs}
}

// startEmulator starts a Twilio emulator for the sandbox account with e2eToken and the e2e API
// key, plus opts; it is closed when the test ends.
func startEmulator(t *testing.T, opts ...twiliotest.Option) *twiliotest.Server {
	t.Helper()
	emu := twiliotest.NewServer(append([]twiliotest.Option{
		twiliotest.WithAccount(twiliotest.SandboxAccountSID, e2eToken),
		twiliotest.WithAPIKey(e2eKeySID, e2eKeySecret),
	}, opts...)...)
	t.Cleanup(emu.Close)
	return emu
}

// serveLoopback serves c over loopback TCP with debug logs captured and returns a client
// connection to it; server and connection stop when the test ends.
func serveLoopback(t *testing.T, c connector.SmsConnector) (*grpc.ClientConn, *observer.ObservedLogs) {
	t.Helper()
	core, logs := observer.New(zapcore.DebugLevel)
	srv, err := server.New(server.Options{Connector: c, Logger: zap.New(core)})
	if err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(l) }()
	cc, err := grpc.NewClient(l.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cc.Close()
		srv.Shutdown(context.Background())
		<-served
	})
	return cc, logs
}

// config is a Twilio config for the emulator's account, edited by edits.
func config(t *testing.T, edits ...func(map[string]any)) *structpb.Struct {
	t.Helper()
	m := map[string]any{
		"accountSID": twiliotest.SandboxAccountSID,
		"authToken":  e2eToken,
		"from":       twiliotest.FromValid,
		"templates": []any{
			map[string]any{"usageType": "Generic", "content": "Your code is {{code}}"},
			map[string]any{"usageType": "SignIn", "content": "Sign in to {{application.name}} with {{code}}"},
		},
	}
	for _, e := range edits {
		e(m)
	}
	s, err := structpb.NewStruct(m)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func request(t *testing.T, to string, edits ...func(map[string]any)) *smsv1.SendMessageRequest {
	return &smsv1.SendMessageRequest{
		To:        to,
		UsageType: smsv1.UsageType_USAGE_TYPE_SIGN_IN,
		Payload: &smsv1.Payload{Code: "424242", Variables: func() *structpb.Struct {
			s, _ := structpb.NewStruct(map[string]any{"application": map[string]any{"name": "Acme"}, "filler": strings.Repeat("f", 100)})
			return s
		}()},
		Config: config(t, edits...),
	}
}

func TestTwilioEndToEndSuccess(t *testing.T) {
	s := newStack(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	resp, err := s.client.SendMessage(ctx, request(t, "+1 415 555 0123"))
	if err != nil {
		t.Fatal(err)
	}
	msgs := s.emu.Messages()
	if len(msgs) != 1 || msgs[0].Body != "Sign in to Acme with 424242" || msgs[0].To != "+14155550123" {
		t.Fatalf("emulator got %+v", msgs)
	}
	if resp.MessageId != msgs[0].Sid || resp.Status != "queued" || resp.Segments != 1 ||
		resp.Encoding != smsv1.Encoding_ENCODING_GSM7 || resp.To != "+14155550123" || resp.ConnectorId != twilio.ID {
		t.Fatalf("response %+v", resp)
	}
	assertNoSecret(t, s, nil)
}

func TestTwilioEndToEndErrors(t *testing.T) {
	withFrom := func(from string) func(map[string]any) { return func(m map[string]any) { m["from"] = from } }
	tests := []struct {
		name   string
		to     string
		edit   func(map[string]any)
		fault  *twiliotest.Fault
		code   codes.Code
		reason string
		twilio string // provider_code
		retry  bool
	}{
		{"20003 auth failed", "+14155550123", func(m map[string]any) { m["authToken"] = "wrongwrongwrongwrongwrongwrong00" }, nil, codes.FailedPrecondition, "PROVIDER_AUTH_FAILED", "20003", false},
		{"20404 account not found", "+14155550123", func(m map[string]any) {
			m["accountSID"] = "AC" + strings.Repeat("f", 32) // an API key of the emulator's account, used for another account
			m["apiKeySID"], m["apiKeySecret"] = e2eKeySID, e2eKeySecret
		}, nil, codes.FailedPrecondition, "PROVIDER_ACCOUNT_NOT_FOUND", "20404", false},
		{"20429 too many requests (Retry-After too long to wait)", "+14155550123", nil, &twiliotest.Fault{Kind: twiliotest.FaultTooManyRequests, RetryAfter: time.Minute}, codes.Unavailable, "PROVIDER_RATE_LIMITED", "20429", true},
		{"21211 invalid To", twiliotest.ToInvalid, nil, nil, codes.InvalidArgument, "INVALID_PHONE_NUMBER", "21211", false},
		{"21212 invalid From", "+14155550123", withFrom(twiliotest.FromInvalid), nil, codes.FailedPrecondition, "INVALID_SENDER", "21212", false},
		{"21606 From not usable", "+14155550123", withFrom(twiliotest.FromNotOwned), nil, codes.FailedPrecondition, "INVALID_SENDER", "21606", false},
		{"21408 geo permission", twiliotest.ToNoGeoPermission, nil, nil, codes.FailedPrecondition, "COUNTRY_NOT_PERMITTED", "21408", false},
		{"21610 opted out", twiliotest.ToOptedOut, nil, nil, codes.FailedPrecondition, "RECIPIENT_OPTED_OUT", "21610", false},
		{"21611 queue full", "+14155550123", withFrom(twiliotest.FromQueueFull), nil, codes.ResourceExhausted, "PROVIDER_QUEUE_FULL", "21611", false},
		{"21612 unreachable", twiliotest.ToUnreachable, nil, nil, codes.FailedPrecondition, "RECIPIENT_UNREACHABLE", "21612", false},
		{"21614 not mobile", twiliotest.ToNotMobile, nil, nil, codes.InvalidArgument, "RECIPIENT_NOT_MOBILE", "21614", false},
		{"21635 landline", twiliotest.ToLandline, nil, nil, codes.InvalidArgument, "RECIPIENT_NOT_MOBILE", "21635", false},
		{"5xx JSON", "+14155550123", nil, &twiliotest.Fault{Kind: twiliotest.FaultServerErrorJSON}, codes.Unavailable, "PROVIDER_OUTCOME_UNKNOWN", "20500", false},
		{"5xx HTML", "+14155550123", nil, &twiliotest.Fault{Kind: twiliotest.FaultServerErrorHTML}, codes.Unavailable, "PROVIDER_OUTCOME_UNKNOWN", "", false},
		{"connection reset", "+14155550123", nil, &twiliotest.Fault{Kind: twiliotest.FaultConnectionReset}, codes.Unavailable, "PROVIDER_OUTCOME_UNKNOWN", "", false},
		{"redirect without a message", "+14155550123", nil, &twiliotest.Fault{Kind: twiliotest.FaultRedirect}, codes.Internal, "PROVIDER_INVALID_RESPONSE", "", false},
		{"rendered body over 1600", "+14155550123", func(m map[string]any) {
			// The template fits (1588 characters); rendered with a 100-character variable it does not.
			m["templates"] = []any{map[string]any{"usageType": "Generic", "content": strings.Repeat("x", 1570) + "{{filler}}{{code}}"}}
		}, nil, codes.FailedPrecondition, "MESSAGE_TOO_LONG", "", false},
		{"no template and no Generic", "+14155550123", func(m map[string]any) {
			m["templates"] = []any{map[string]any{"usageType": "Register", "content": "{{code}}"}}
		}, nil, codes.FailedPrecondition, "TEMPLATE_NOT_FOUND", "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newStack(t)
			if tt.fault != nil {
				s.emu.InjectFault(*tt.fault, 1)
			}
			var edits []func(map[string]any)
			if tt.edit != nil {
				edits = append(edits, tt.edit)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			_, err := s.client.SendMessage(ctx, request(t, tt.to, edits...))
			st := status.Convert(err)
			if st.Code() != tt.code {
				t.Fatalf("code = %s (%q), want %s", st.Code(), st.Message(), tt.code)
			}
			info, retry := details(st)
			if info == nil || info.Reason != tt.reason || info.Domain != server.ErrorDomain || info.Metadata["provider_code"] != tt.twilio {
				t.Fatalf("ErrorInfo = %v, want reason %s provider_code %q", info, tt.reason, tt.twilio)
			}
			if tt.twilio != "" && (info.Metadata["provider"] != "twilio" || info.Metadata["more_info"] != "https://www.twilio.com/docs/errors/"+tt.twilio) {
				t.Errorf("ErrorInfo metadata = %v", info.Metadata)
			}
			if (retry != nil) != tt.retry {
				t.Errorf("RetryInfo = %v, want present=%v", retry, tt.retry)
			}
			if strings.Contains(st.Message(), "{") || strings.Contains(st.Message(), "<") {
				t.Errorf("status message passes Twilio's raw answer on: %q", st.Message())
			}
			assertNoSecret(t, s, err)
		})
	}
}

func TestTwilioEndToEndInvalidMessagingService(t *testing.T) {
	s := newStack(t, twiliotest.WithMessagingServices("MG"+strings.Repeat("1", 32)))
	req := request(t, "+14155550123", func(m map[string]any) {
		delete(m, "from")
		m["fromMessagingServiceSID"] = "MG" + strings.Repeat("2", 32)
	})
	_, err := s.client.SendMessage(context.Background(), req)
	st := status.Convert(err)
	info, _ := details(st)
	if st.Code() != codes.FailedPrecondition || info == nil || info.Reason != "INVALID_SENDER" || info.Metadata["provider_code"] != "21705" {
		t.Fatalf("got %s %v, want FAILED_PRECONDITION INVALID_SENDER 21705", st.Code(), info)
	}
	assertNoSecret(t, s, err)
}

// TestTwilioEndToEndDeadline: a Twilio slower than the RPC deadline gives DEADLINE_EXCEEDED.
// The emulator waits a minute; the RPC allows 300 ms; the test's own timeout catches a hang.
// Nothing here measures time.
func TestTwilioEndToEndDeadline(t *testing.T) {
	s := newStack(t)
	s.emu.SetLatency(time.Minute)
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	_, err := s.client.SendMessage(ctx, request(t, "+14155550123"))
	if st := status.Convert(err); st.Code() != codes.DeadlineExceeded {
		t.Fatalf("code = %s (%q), want DEADLINE_EXCEEDED", st.Code(), st.Message())
	}
	if len(s.emu.Messages()) != 0 {
		t.Fatalf("a message was recorded")
	}
}

func TestTwilioEndToEndValidateConfig(t *testing.T) {
	s := newStack(t)
	ctx := context.Background()
	logto, err := structpb.NewStruct(map[string]any{
		"accountSID":              "AC" + strings.Repeat("0123456789abcdef", 2),
		"authToken":               e2eToken,
		"fromMessagingServiceSID": "MG" + strings.Repeat("0123456789abcdef", 2),
		"templates": []any{
			map[string]any{"usageType": "Register", "content": "Your registration code is {{code}}"},
			map[string]any{"usageType": "SignIn", "content": "Your sign-in code is {{code}}"},
			map[string]any{"usageType": "ForgotPassword", "content": "Your reset code is {{code}}"},
			map[string]any{"usageType": "Generic", "content": "Your code is {{code}}"},
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	resp, err := s.client.ValidateConfig(ctx, &smsv1.ValidateConfigRequest{Config: logto})
	if err != nil || !resp.Valid || len(resp.Violations) != 0 {
		t.Fatalf("pasted Logto config: %v %v", resp, err)
	}
	three := config(t, func(m map[string]any) {
		m["accountSID"] = "AC123"
		m["fromMessagingServiceSID"] = "MG" + strings.Repeat("0", 32) // both senders
		m["host"] = "evil.example.com"
	})
	resp, err = s.client.ValidateConfig(ctx, &smsv1.ValidateConfigRequest{Config: three})
	if err != nil || resp.Valid || len(resp.Violations) != 3 {
		t.Fatalf("three problems: %v %v", resp, err)
	}
	var fields []string
	for _, v := range resp.Violations {
		fields = append(fields, v.Field)
		if strings.Contains(v.Description, e2eToken) {
			t.Errorf("violation leaks the token: %v", v)
		}
	}
	if got := strings.Join(fields, ","); !strings.Contains(got, "accountSID") || !strings.Contains(got, "host") || !strings.Contains(got, "from") {
		t.Errorf("violation fields = %s", got)
	}
	// SendMessage with the same config: INVALID_ARGUMENT with each field under config.
	req := request(t, "+14155550123")
	req.Config = three
	_, err = s.client.SendMessage(ctx, req)
	st := status.Convert(err)
	var bad []string
	for _, d := range st.Details() {
		if br, ok := d.(*errdetails.BadRequest); ok {
			for _, v := range br.FieldViolations {
				bad = append(bad, v.Field)
			}
		}
	}
	if st.Code() != codes.InvalidArgument || len(bad) != 3 || !strings.HasPrefix(bad[0], "config.") {
		t.Fatalf("SendMessage with a bad config: %s %v", st.Code(), bad)
	}
	if n := s.emu.Requests(); n != 0 {
		t.Fatalf("emulator saw %d requests for invalid configs", n)
	}
	assertNoSecret(t, s, err)
}

// details returns the ErrorInfo and RetryInfo of st.
func details(st *status.Status) (*errdetails.ErrorInfo, *errdetails.RetryInfo) {
	var info *errdetails.ErrorInfo
	var retry *errdetails.RetryInfo
	for _, d := range st.Details() {
		switch x := d.(type) {
		case *errdetails.ErrorInfo:
			info = x
		case *errdetails.RetryInfo:
			retry = x
		}
	}
	return info, retry
}

// assertNoSecret checks that the auth token appears in no debug log entry and not in err.
func assertNoSecret(t *testing.T, s *stack, err error) {
	t.Helper()
	if err != nil && (strings.Contains(status.Convert(err).String()+err.Error(), e2eToken) || strings.Contains(status.Convert(err).String()+err.Error(), e2eKeySecret)) {
		t.Errorf("the error carries the auth token: %v", err)
	}
	for _, d := range status.Convert(err).Details() {
		if info, ok := d.(*errdetails.ErrorInfo); ok {
			for k, v := range info.Metadata {
				if strings.Contains(k+v, e2eToken) {
					t.Errorf("ErrorInfo metadata carries the auth token")
				}
			}
		}
	}
	entries := s.logs.All()
	if len(entries) == 0 {
		t.Fatal("no log entries captured: the scan would prove nothing")
	}
	for _, e := range entries {
		line := e.Message
		for k, v := range e.ContextMap() {
			line += " " + k + "=" + strings.ReplaceAll(fmt.Sprint(v), "\n", " ")
		}
		if strings.Contains(line, e2eToken) || strings.Contains(line, e2eKeySecret) {
			t.Errorf("log entry carries the auth token: %s", line)
		}
	}
}

// configJSON is config as JSON text, for SendMessageRequest.config_json.
func configJSON(t *testing.T, edits ...func(map[string]any)) string {
	t.Helper()
	b, err := protojson.Marshal(config(t, edits...))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestTwilioEndToEndConfigJSON(t *testing.T) {
	s := newStack(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	withJSON := func(text string) *smsv1.SendMessageRequest {
		req := request(t, "+14155550123")
		req.Config, req.ConfigJson = nil, text
		return req
	}
	// Sent twice: the second is answered from the connector's parsed-config cache; both send.
	for i := range 2 {
		resp, err := s.client.SendMessage(ctx, withJSON("  "+configJSON(t)+"\n"))
		if err != nil {
			t.Fatalf("send %d: %v", i+1, err)
		}
		msgs := s.emu.Messages()
		if len(msgs) != i+1 || msgs[i].Body != "Sign in to Acme with 424242" || resp.MessageId != msgs[i].Sid {
			t.Fatalf("send %d: response %+v, emulator %+v", i+1, resp, msgs)
		}
	}

	both := withJSON(configJSON(t))
	both.Config = config(t)
	badFrom := configJSON(t, func(m map[string]any) { m["from"] = "not a number"; delete(m, "accountSID") })
	tests := []struct {
		name   string
		req    *smsv1.SendMessageRequest
		reason string
		fields []string
	}{
		{"both config and config_json", both, "INVALID_REQUEST", []string{"config_json"}},
		{"a JSON array", withJSON(`[{"accountSID": "AC1"}]`), "INVALID_CONFIG", []string{"config_json"}},
		{"white space only", withJSON(" \n "), "INVALID_CONFIG", []string{"config_json"}},
		{"not JSON", withJSON(`{"accountSID": `), "INVALID_CONFIG", []string{"config_json"}},
		{"an invalid configuration", withJSON(badFrom), "INVALID_CONFIG", []string{"config_json.accountSID", "config_json.from"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := s.client.SendMessage(ctx, tt.req)
			st := status.Convert(err)
			info, _ := details(st)
			var fields []string
			for _, d := range st.Details() {
				if br, ok := d.(*errdetails.BadRequest); ok {
					for _, v := range br.FieldViolations {
						fields = append(fields, v.Field)
					}
				}
			}
			slices.Sort(fields)
			if st.Code() != codes.InvalidArgument || info.GetReason() != tt.reason || !slices.Equal(fields, tt.fields) {
				t.Fatalf("got %s %s %v (%s); want INVALID_ARGUMENT %s %v", st.Code(), info.GetReason(), fields, st.Message(), tt.reason, tt.fields)
			}
			assertNoSecret(t, s, err)
		})
	}
	if n := len(s.emu.Messages()); n != 2 {
		t.Fatalf("the emulator holds %d messages; the refused requests must send none", n)
	}

	// ValidateConfig takes config_json too; its violations are relative to the configuration.
	validations := []struct {
		name       string
		text       string
		wantValid  bool
		wantFields []string
	}{
		{"valid", configJSON(t), true, nil},
		{"two problems", badFrom, false, []string{"accountSID", "from"}},
		{"a JSON array", `[1]`, false, []string{""}},
		{"not JSON", `{"accountSID": `, false, []string{""}},
	}
	for _, tt := range validations {
		t.Run("ValidateConfig "+tt.name, func(t *testing.T) {
			resp, err := s.client.ValidateConfig(ctx, &smsv1.ValidateConfigRequest{ConfigJson: tt.text})
			if err != nil {
				t.Fatal(err)
			}
			var fields []string
			for _, v := range resp.GetViolations() {
				fields = append(fields, v.GetField())
			}
			slices.Sort(fields)
			if resp.GetValid() != tt.wantValid || !slices.Equal(fields, tt.wantFields) {
				t.Fatalf("valid %v, fields %q; want %v, %q", resp.GetValid(), fields, tt.wantValid, tt.wantFields)
			}
		})
	}
	_, err := s.client.ValidateConfig(ctx, &smsv1.ValidateConfigRequest{Config: config(t), ConfigJson: configJSON(t)})
	if st := status.Convert(err); st.Code() != codes.InvalidArgument {
		t.Fatalf("ValidateConfig with config and config_json: %v, want INVALID_ARGUMENT", err)
	} else if info, _ := details(st); info.GetReason() != "INVALID_REQUEST" {
		t.Fatalf("ValidateConfig with config and config_json: reason %q, want INVALID_REQUEST", info.GetReason())
	}
}
