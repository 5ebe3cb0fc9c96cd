package server

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/connectivity"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	reflectionpb "google.golang.org/grpc/reflection/grpc_reflection_v1"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/structpb"

	"github.com/sms-connector/sms-connector/connector"
	smsv1 "github.com/sms-connector/sms-connector/gen/connector/sms/v1"
	"github.com/sms-connector/sms-connector/internal/protoconv"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// testTimeout bounds each test's RPCs so a bug hangs no test forever; nothing asserts on time.
const testTimeout = 30 * time.Second

// harness is one running server with a client connected over loopback TCP (or a unix socket).
type harness struct {
	srv    *Server
	conn   *grpc.ClientConn
	client smsv1.SmsConnectorClient
	fake   *fakeConnector
	logs   *observer.ObservedLogs
	served chan error
}

// start serves fake on addr ("" = loopback TCP) with opts adjusted by edit, and stops it when
// the test ends.
func start(t *testing.T, fake *fakeConnector, addr string, edit func(*Options)) *harness {
	t.Helper()
	core, logs := observer.New(zapcore.DebugLevel)
	opts := Options{Connector: fake, Logger: zap.New(core)}
	if edit != nil {
		edit(&opts)
	}
	srv, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	l, err := Listen(addr)
	if err != nil {
		t.Fatal(err)
	}
	h := &harness{srv: srv, fake: fake, logs: logs, served: make(chan error, 1)}
	go func() { h.served <- srv.Serve(l) }()
	target := l.Addr().String()
	if l.Addr().Network() == "unix" {
		target = "unix://" + target
	}
	h.conn, err = grpc.NewClient(target, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	h.client = smsv1.NewSmsConnectorClient(h.conn)
	t.Cleanup(func() {
		h.conn.Close()
		ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
		defer cancel()
		srv.Shutdown(ctx)
		if err := <-h.served; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	return h
}

func ctxFor(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	t.Cleanup(cancel)
	return ctx
}

func mustStruct(t testing.TB, m map[string]any) *structpb.Struct {
	t.Helper()
	s, err := structpb.NewStruct(m)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// validRequest is a request the fake accepts, with its own config.
func validRequest(t *testing.T) *smsv1.SendMessageRequest {
	return &smsv1.SendMessageRequest{
		To:        "+1 500 555 0006",
		UsageType: smsv1.UsageType_USAGE_TYPE_SIGN_IN,
		Payload: &smsv1.Payload{Code: "123456", Locale: "fr-CA", Variables: mustStruct(t, map[string]any{
			"application": map[string]any{"name": "Acme"},
		})},
		Config:         mustStruct(t, map[string]any{"x": "ok", "authToken": "s3cr3t-token-value"}),
		IdempotencyKey: "idem-1",
		ClientIp:       "2001:db8::1",
	}
}

// wantStatus checks err's code, ErrorInfo reason and BadRequest fields (nil = no BadRequest).
func wantStatus(t *testing.T, err error, code codes.Code, reason connector.Reason, badFields []string) details {
	t.Helper()
	st, ok := status.FromError(err)
	if !ok {
		t.Fatalf("err = %v, not a status", err)
	}
	if st.Code() != code {
		t.Fatalf("code = %s (%q), want %s", st.Code(), st.Message(), code)
	}
	d := detailsOf(t, st)
	if d.info.Reason != string(reason) {
		t.Errorf("reason = %s, want %s", d.info.Reason, reason)
	}
	if got := fields(d.badRequest); !slices.Equal(got, badFields) {
		t.Errorf("BadRequest fields = %q, want %q", got, badFields)
	}
	return d
}

func TestSendMessage(t *testing.T) {
	h := start(t, &fakeConnector{}, "", nil)
	resp, err := h.client.SendMessage(ctxFor(t), validRequest(t))
	if err != nil {
		t.Fatal(err)
	}
	want := &smsv1.SendMessageResponse{
		MessageId: "SM00000000000000000000000000000001", Status: "queued", Segments: 1,
		Encoding: smsv1.Encoding_ENCODING_GSM7, To: "+15005550006", Sender: "+15005550006", ConnectorId: fakeID,
	}
	if resp.String() != want.String() {
		t.Errorf("response = %v\nwant       %v", resp, want)
	}
	msgs := h.fake.messages()
	if len(msgs) != 1 {
		t.Fatalf("connector got %d messages", len(msgs))
	}
	m := msgs[0]
	if m.To != "+15005550006" || m.UsageType != connector.UsageSignIn || m.Payload.Code != "123456" ||
		m.Payload.Locale != "fr-CA" || m.IdempotencyKey != "idem-1" || m.ClientIP != "2001:db8::1" {
		t.Errorf("message = %+v", m)
	}
	if app, _ := m.Payload.Variables["application"].(map[string]any); app["name"] != "Acme" {
		t.Errorf("variables = %v", m.Payload.Variables)
	}
	var cfg map[string]any
	if err := json.Unmarshal(m.Config, &cfg); err != nil || cfg["x"] != "ok" || cfg["authToken"] != "s3cr3t-token-value" {
		t.Errorf("config = %s (%v)", m.Config, err)
	}
}

func TestSendMessageUsageTypes(t *testing.T) {
	h := start(t, &fakeConnector{}, "", nil)
	for _, u := range connector.UsageTypes() {
		req := validRequest(t)
		pu, ok := protoconv.UsageToProto(u)
		if !ok {
			t.Fatalf("%s has no proto value", u)
		}
		req.UsageType = pu
		if _, err := h.client.SendMessage(ctxFor(t), req); err != nil {
			t.Fatalf("%s: %v", pu, err)
		}
	}
	var got []connector.UsageType
	for _, m := range h.fake.messages() {
		got = append(got, m.UsageType)
	}
	if !slices.Equal(got, connector.UsageTypes()) {
		t.Errorf("usage types = %v, want %v", got, connector.UsageTypes())
	}
}

func TestSendMessageEncodings(t *testing.T) {
	for enc, want := range map[connector.Encoding]smsv1.Encoding{
		connector.EncodingGSM7: smsv1.Encoding_ENCODING_GSM7,
		connector.EncodingUCS2: smsv1.Encoding_ENCODING_UCS2,
		"":                     smsv1.Encoding_ENCODING_UNSPECIFIED,
	} {
		h := start(t, &fakeConnector{send: func(_ context.Context, m *connector.Message) (*connector.Receipt, error) {
			return &connector.Receipt{MessageID: "SM1", Encoding: enc, Segments: 3}, nil
		}}, "", nil)
		resp, err := h.client.SendMessage(ctxFor(t), validRequest(t))
		if err != nil {
			t.Fatal(err)
		}
		if resp.Encoding != want || resp.Segments != 3 || resp.To != "+15005550006" {
			t.Errorf("%q: response = %v", enc, resp)
		}
	}
}

func TestSendMessageInvalidRequest(t *testing.T) {
	tests := []struct {
		name   string
		edit   func(*smsv1.SendMessageRequest)
		reason connector.Reason
		fields []string
	}{
		{"empty to", func(r *smsv1.SendMessageRequest) { r.To = "" }, connector.ReasonInvalidPhoneNumber, []string{"to"}},
		{"malformed to", func(r *smsv1.SendMessageRequest) { r.To = "call me maybe" }, connector.ReasonInvalidPhoneNumber, []string{"to"}},
		{"unspecified usage", func(r *smsv1.SendMessageRequest) { r.UsageType = smsv1.UsageType_USAGE_TYPE_UNSPECIFIED }, connector.ReasonInvalidRequest, []string{"usage_type"}},
		{"unknown usage", func(r *smsv1.SendMessageRequest) { r.UsageType = 42 }, connector.ReasonInvalidRequest, []string{"usage_type"}},
		{"missing payload", func(r *smsv1.SendMessageRequest) { r.Payload = nil }, connector.ReasonInvalidRequest, []string{"payload"}},
		{"empty code", func(r *smsv1.SendMessageRequest) { r.Payload.Code = "" }, connector.ReasonInvalidRequest, []string{"payload.code"}},
		{"long code", func(r *smsv1.SendMessageRequest) { r.Payload.Code = strings.Repeat("9", 65) }, connector.ReasonInvalidRequest, []string{"payload.code"}},
		{"long idempotency key", func(r *smsv1.SendMessageRequest) { r.IdempotencyKey = strings.Repeat("k", 129) }, connector.ReasonInvalidRequest, []string{"idempotency_key"}},
		{"bad client ip", func(r *smsv1.SendMessageRequest) { r.ClientIp = "10.0.0.256" }, connector.ReasonInvalidRequest, []string{"client_ip"}},
		{"bad to and ip", func(r *smsv1.SendMessageRequest) { r.To = "x"; r.ClientIp = "nope" }, connector.ReasonInvalidRequest, []string{"to", "client_ip"}},
		{"everything", func(r *smsv1.SendMessageRequest) {
			*r = smsv1.SendMessageRequest{IdempotencyKey: strings.Repeat("k", 200), ClientIp: "::g"}
		}, connector.ReasonInvalidRequest, []string{"to", "usage_type", "payload", "idempotency_key", "client_ip"}},
	}
	h := start(t, &fakeConnector{}, "", nil)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := validRequest(t)
			tt.edit(req)
			_, err := h.client.SendMessage(ctxFor(t), req)
			wantStatus(t, err, codes.InvalidArgument, tt.reason, tt.fields)
		})
	}
	if n := len(h.fake.messages()); n != 0 {
		t.Errorf("the connector saw %d invalid requests", n)
	}
	// The limits are inclusive.
	req := validRequest(t)
	req.IdempotencyKey = strings.Repeat("é", 128)
	req.ClientIp = "192.0.2.1"
	if _, err := h.client.SendMessage(ctxFor(t), req); err != nil {
		t.Errorf("128-character idempotency key: %v", err)
	}
}

func TestSendMessageConfig(t *testing.T) {
	defaultCfg := json.RawMessage(`{"x":"default"}`)
	configOf := func(t *testing.T, h *harness) string {
		t.Helper()
		msgs := h.fake.messages()
		return string(msgs[len(msgs)-1].Config)
	}

	t.Run("rejected by the connector", func(t *testing.T) {
		h := start(t, &fakeConnector{}, "", nil)
		req := validRequest(t)
		req.Config = mustStruct(t, map[string]any{"x": 1})
		_, err := h.client.SendMessage(ctxFor(t), req)
		wantStatus(t, err, codes.InvalidArgument, connector.ReasonInvalidConfig, []string{"config.x"})
	})
	t.Run("missing, no default", func(t *testing.T) {
		h := start(t, &fakeConnector{}, "", nil)
		for _, cfg := range []*structpb.Struct{nil, {}} {
			req := validRequest(t)
			req.Config = cfg
			_, err := h.client.SendMessage(ctxFor(t), req)
			wantStatus(t, err, codes.FailedPrecondition, connector.ReasonConfigMissing, nil)
		}
		if n := len(h.fake.messages()); n != 0 {
			t.Errorf("the connector was called %d times", n)
		}
	})
	t.Run("default", func(t *testing.T) {
		h := start(t, &fakeConnector{}, "", func(o *Options) { o.DefaultConfig = defaultCfg })
		for _, cfg := range []*structpb.Struct{nil, {}} {
			req := validRequest(t)
			req.Config = cfg
			if _, err := h.client.SendMessage(ctxFor(t), req); err != nil {
				t.Fatal(err)
			}
			if got := configOf(t, h); got != string(defaultCfg) {
				t.Errorf("config = %s, want the default", got)
			}
		}
		req := validRequest(t)
		req.Config = mustStruct(t, map[string]any{"x": "own"})
		if _, err := h.client.SendMessage(ctxFor(t), req); err != nil {
			t.Fatal(err)
		}
		if got := configOf(t, h); got != `{"x":"own"}` {
			t.Errorf("config = %s, want the request's", got)
		}
	})
	t.Run("bad default", func(t *testing.T) {
		for _, bad := range []string{`[1]`, `null`, `{`, `"s"`} {
			if _, err := New(Options{Connector: &fakeConnector{}, DefaultConfig: json.RawMessage(bad)}); err == nil {
				t.Errorf("New accepted DefaultConfig %s", bad)
			}
		}
	})
}

func TestSendMessageTooLarge(t *testing.T) {
	h := start(t, &fakeConnector{}, "", nil)
	req := validRequest(t)
	req.Payload.Variables = mustStruct(t, map[string]any{"blob": strings.Repeat("a", 10<<20)})
	_, err := h.client.SendMessage(ctxFor(t), req)
	if status.Code(err) != codes.ResourceExhausted {
		t.Fatalf("err = %v, want RESOURCE_EXHAUSTED", err)
	}
	if n := len(h.fake.messages()); n != 0 {
		t.Errorf("the connector was called %d times", n)
	}
	// A request under the limit still works on the same connection.
	if _, err := h.client.SendMessage(ctxFor(t), validRequest(t)); err != nil {
		t.Fatal(err)
	}
}

func TestSendMessageConnectorErrors(t *testing.T) {
	h := start(t, &fakeConnector{}, "", nil)
	for _, w := range wantCode {
		t.Run(string(w.reason), func(t *testing.T) {
			var retryAfter time.Duration
			if w.code == codes.ResourceExhausted || w.code == codes.Unavailable {
				retryAfter = 2 * time.Second
			}
			h.fake.setSend(func(context.Context, *connector.Message) (*connector.Receipt, error) {
				return nil, &connector.Error{
					Reason: w.reason, Message: "safe: " + string(w.reason),
					Provider: "twilio", ProviderCode: "30001", MoreInfo: "https://www.twilio.com/docs/errors/30001",
					RetryAfter: retryAfter,
					Err:        errors.New("cause with vendor detail"),
				}
			})
			_, err := h.client.SendMessage(ctxFor(t), validRequest(t))
			d := wantStatus(t, err, w.code, w.reason, nil)
			if msg := status.Convert(err).Message(); msg != "safe: "+string(w.reason) {
				t.Errorf("message = %q", msg)
			}
			if d.info.Metadata["provider"] != "twilio" || d.info.Metadata["provider_code"] != "30001" ||
				d.info.Metadata["more_info"] != "https://www.twilio.com/docs/errors/30001" {
				t.Errorf("metadata = %v", d.info.Metadata)
			}
			if got := d.retry.GetRetryDelay().AsDuration(); got != retryAfter {
				t.Errorf("retry delay = %v, want %v", got, retryAfter)
			}
		})
	}
}

func TestSendMessageOtherErrors(t *testing.T) {
	tests := []struct {
		name   string
		send   func(context.Context, *connector.Message) (*connector.Receipt, error)
		code   codes.Code
		reason connector.Reason
	}{
		{"untyped error", func(context.Context, *connector.Message) (*connector.Receipt, error) {
			return nil, errors.New("raw vendor JSON {\"code\":20003}")
		}, codes.Internal, connector.ReasonInternal},
		{"no receipt", func(context.Context, *connector.Message) (*connector.Receipt, error) {
			return nil, nil
		}, codes.Internal, connector.ReasonInternal},
		{"bare deadline", func(context.Context, *connector.Message) (*connector.Receipt, error) {
			return nil, context.DeadlineExceeded
		}, codes.DeadlineExceeded, connector.ReasonProviderTimeout},
		{"bare cancel", func(context.Context, *connector.Message) (*connector.Receipt, error) {
			return nil, context.Canceled
		}, codes.Canceled, connector.ReasonCancelled},
		{"panic", func(context.Context, *connector.Message) (*connector.Receipt, error) {
			panic("boom: nil map in the connector")
		}, codes.Internal, connector.ReasonInternal},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := start(t, &fakeConnector{send: tt.send}, "", nil)
			_, err := h.client.SendMessage(ctxFor(t), validRequest(t))
			wantStatus(t, err, tt.code, tt.reason, nil)
			if msg := status.Convert(err).Message(); strings.Contains(msg, "vendor") || strings.Contains(msg, "boom") {
				t.Errorf("message leaks the cause: %q", msg)
			}
			// The server still serves.
			h.fake.setSend(nil)
			if _, err := h.client.GetMetadata(ctxFor(t), &smsv1.GetMetadataRequest{}); err != nil {
				t.Errorf("after %s: %v", tt.name, err)
			}
		})
	}
}

func TestPanicKeepsServing(t *testing.T) {
	var calls atomic.Int32
	fake := &fakeConnector{send: func(_ context.Context, m *connector.Message) (*connector.Receipt, error) {
		if calls.Add(1) == 1 {
			panic("boom")
		}
		return &connector.Receipt{MessageID: "SM2", To: m.To}, nil
	}}
	h := start(t, fake, "", nil)
	_, err := h.client.SendMessage(ctxFor(t), validRequest(t))
	wantStatus(t, err, codes.Internal, connector.ReasonInternal, nil)
	resp, err := h.client.SendMessage(ctxFor(t), validRequest(t))
	if err != nil || resp.MessageId != "SM2" {
		t.Fatalf("second send = %v, %v", resp, err)
	}
	fin := finished(h.logs)
	if len(fin) != 2 || fin[0].ContextMap()["grpc.code"] != "Internal" || fin[0].ContextMap()["error.reason"] != "INTERNAL" ||
		fin[1].ContextMap()["grpc.code"] != "OK" {
		t.Errorf("finish lines = %v", fin)
	}
	entries := h.logs.FilterMessageSnippet("panic").AllUntimed()
	if len(entries) != 1 || entries[0].Level != zapcore.ErrorLevel {
		t.Fatalf("panic log entries = %v", entries)
	}
	ctxMap := entries[0].ContextMap()
	if ctxMap["panic"] != "boom" || !strings.Contains(entries[0].ContextMap()["stack"].(string), "fake_test.go") ||
		ctxMap["grpc.method"] != "SendMessage" {
		t.Errorf("panic entry = %v", ctxMap)
	}
}

func TestValidateConfig(t *testing.T) {
	h := start(t, &fakeConnector{}, "", nil)
	ctx := ctxFor(t)

	_, err := h.client.ValidateConfig(ctx, &smsv1.ValidateConfigRequest{})
	wantStatus(t, err, codes.InvalidArgument, connector.ReasonInvalidRequest, []string{"config"})

	resp, err := h.client.ValidateConfig(ctx, &smsv1.ValidateConfigRequest{Config: mustStruct(t, map[string]any{"x": "fine"})})
	if err != nil || !resp.Valid || len(resp.Violations) != 0 {
		t.Errorf("valid config: %v, %v", resp, err)
	}
	resp, err = h.client.ValidateConfig(ctx, &smsv1.ValidateConfigRequest{Config: mustStruct(t, map[string]any{"x": true})})
	if err != nil || resp.Valid || len(resp.Violations) != 1 || resp.Violations[0].Field != "x" || resp.Violations[0].Description != "must be a string" {
		t.Errorf("invalid config: %v, %v", resp, err)
	}

	h.fake.setValidate(func(context.Context, json.RawMessage) ([]connector.Violation, error) {
		return nil, &connector.Error{Reason: connector.ReasonProviderUnavailable, Message: "cannot reach the vendor"}
	})
	_, err = h.client.ValidateConfig(ctx, &smsv1.ValidateConfigRequest{Config: &structpb.Struct{}})
	wantStatus(t, err, codes.Unavailable, connector.ReasonProviderUnavailable, nil)
}

func TestGetMetadata(t *testing.T) {
	h := start(t, &fakeConnector{}, "", nil)
	md, err := h.client.GetMetadata(ctxFor(t), &smsv1.GetMetadataRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if md.Id != fakeID || md.Target != "fake" || md.Name["fr"] != "SMS factice" || md.Description["en"] != "Sends nothing." ||
		md.Readme != "# Fake" || md.ConnectorVersion != "1.2.3" || md.ContractVersion != "connector.sms.v1" || md.Logo == "" {
		t.Errorf("metadata = %v", md)
	}
	wantUsage := []smsv1.UsageType{smsv1.UsageType_USAGE_TYPE_SIGN_IN, smsv1.UsageType_USAGE_TYPE_GENERIC, smsv1.UsageType_USAGE_TYPE_BIND_MFA}
	if !slices.Equal(md.SupportedUsageTypes, wantUsage) {
		t.Errorf("usage types = %v", md.SupportedUsageTypes)
	}
	if len(md.FormItems) != 5 {
		t.Fatalf("form items = %v", md.FormItems)
	}
	token, validity, risk, templates, region := md.FormItems[0], md.FormItems[1], md.FormItems[2], md.FormItems[3], md.FormItems[4]
	if token.Key != "authToken" || !token.Confidential || !token.Required || token.Type != smsv1.FormItemType_FORM_ITEM_TYPE_TEXT || token.DefaultValue != nil {
		t.Errorf("authToken item = %v", token)
	}
	if validity.DefaultValue.GetNumberValue() != 600 || validity.Type != smsv1.FormItemType_FORM_ITEM_TYPE_NUMBER {
		t.Errorf("validity item = %v", validity)
	}
	if _, ok := risk.DefaultValue.GetKind().(*structpb.Value_BoolValue); !ok || risk.Type != smsv1.FormItemType_FORM_ITEM_TYPE_SWITCH {
		t.Errorf("risk item = %v (a false default must still be sent)", risk)
	}
	if l := templates.DefaultValue.GetListValue().GetValues(); len(l) != 2 || l[1].GetStringValue() != "b" || templates.Type != smsv1.FormItemType_FORM_ITEM_TYPE_JSON {
		t.Errorf("templates item = %v", templates)
	}
	if region.Type != smsv1.FormItemType_FORM_ITEM_TYPE_SELECT || len(region.SelectItems) != 2 || region.SelectItems[1].Title != "Ireland" {
		t.Errorf("region item = %v", region)
	}
	schema := md.ConfigSchema.AsMap()
	if req, _ := schema["required"].([]any); len(req) != 1 || req[0] != "authToken" {
		t.Errorf("schema = %v", schema)
	}
	tmpl := md.ConfigTemplate.AsMap()
	if ts, _ := tmpl["templates"].([]any); len(ts) != 1 {
		t.Errorf("template = %v", tmpl)
	}
}

func TestNewRejects(t *testing.T) {
	if _, err := New(Options{}); err == nil {
		t.Error("New accepted no connector")
	}
	if _, err := New(Options{Connector: &fakeConnector{}, MaxRecvMsgSize: -1}); err == nil {
		t.Error("New accepted a negative MaxRecvMsgSize")
	}
	if _, err := New(Options{Connector: &fakeConnector{}, StreamWorkers: 1<<16 + 1}); err == nil {
		t.Error("New accepted more stream workers than it allows")
	}
	bad := []func(*connector.Metadata){
		func(m *connector.Metadata) { m.UsageTypes = append(m.UsageTypes, "Login") },
		func(m *connector.Metadata) { m.FormItems[0].Type = "Slider" },
		func(m *connector.Metadata) { m.ConfigSchema["bad"] = func() {} },
	}
	for i, edit := range bad {
		fake := &fakeConnector{metadata: func(context.Context) (*connector.Metadata, error) {
			m := fakeMetadata()
			edit(m)
			return m, nil
		}}
		if _, err := New(Options{Connector: fake}); err == nil {
			t.Errorf("case %d: New accepted metadata it cannot convert", i)
		}
	}
	failing := &fakeConnector{metadata: func(context.Context) (*connector.Metadata, error) { return nil, errors.New("no") }}
	if _, err := New(Options{Connector: failing}); err == nil {
		t.Error("New ignored a metadata error")
	}
}

func TestHealthAndReflection(t *testing.T) {
	h := start(t, &fakeConnector{}, "", nil)
	ctx := ctxFor(t)
	hc := healthpb.NewHealthClient(h.conn)
	for _, svc := range []string{"", ServiceName} {
		resp, err := hc.Check(ctx, &healthpb.HealthCheckRequest{Service: svc})
		if err != nil || resp.Status != healthpb.HealthCheckResponse_SERVING {
			t.Errorf("health %q = %v, %v", svc, resp, err)
		}
	}
	if _, err := hc.Check(ctx, &healthpb.HealthCheckRequest{Service: "nope"}); status.Code(err) != codes.NotFound {
		t.Errorf("unknown service: %v", err)
	}

	stream, err := reflectionpb.NewServerReflectionClient(h.conn).ServerReflectionInfo(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := stream.Send(&reflectionpb.ServerReflectionRequest{
		MessageRequest: &reflectionpb.ServerReflectionRequest_ListServices{},
	}); err != nil {
		t.Fatal(err)
	}
	resp, err := stream.Recv()
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, s := range resp.GetListServicesResponse().GetService() {
		names = append(names, s.GetName())
	}
	for _, want := range []string{ServiceName, "grpc.health.v1.Health", "grpc.reflection.v1.ServerReflection"} {
		if !slices.Contains(names, want) {
			t.Errorf("reflection lists %v, missing %s", names, want)
		}
	}
	if err := stream.CloseSend(); err != nil {
		t.Fatal(err)
	}
	if _, err := stream.Recv(); err != io.EOF {
		t.Errorf("stream end: %v", err)
	}
}

// TestShutdownDrains: a Send in flight when Shutdown starts completes successfully, and
// neither Shutdown nor Serve returns before it has.
func TestShutdownDrains(t *testing.T) {
	entered, release := make(chan struct{}), make(chan struct{})
	fake := &fakeConnector{send: func(_ context.Context, m *connector.Message) (*connector.Receipt, error) {
		close(entered)
		<-release
		return &connector.Receipt{MessageID: "SM-drained", To: m.To}, nil
	}}
	core, _ := observer.New(zapcore.InfoLevel)
	srv, err := New(Options{Connector: fake, Logger: zap.New(core)})
	if err != nil {
		t.Fatal(err)
	}
	l, err := Listen("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(l) }()
	conn, err := grpc.NewClient(l.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ctx := ctxFor(t)

	type result struct {
		resp *smsv1.SendMessageResponse
		err  error
	}
	sent := make(chan result, 1)
	go func() {
		resp, err := smsv1.NewSmsConnectorClient(conn).SendMessage(ctx, validRequest(t))
		sent <- result{resp, err}
	}()
	<-entered
	// The channel's state is published asynchronously; wait until it says READY.
	for s := conn.GetState(); s != connectivity.Ready; s = conn.GetState() {
		if !conn.WaitForStateChange(ctx, s) {
			t.Fatalf("client state stuck at %s", s)
		}
	}

	shutdown := make(chan struct{})
	go func() {
		srv.Shutdown(ctx)
		close(shutdown)
	}()
	// GracefulStop sends GOAWAY: the client leaves READY. Shutdown is now draining.
	if !conn.WaitForStateChange(ctx, connectivity.Ready) {
		t.Fatal("the client never saw the server go away")
	}
	select {
	case <-shutdown:
		t.Fatal("Shutdown returned while a Send was in flight")
	case err := <-served:
		t.Fatalf("Serve returned (%v) while a Send was in flight", err)
	default:
	}
	if resp, err := srv.Health().Check(ctx, &healthpb.HealthCheckRequest{}); err != nil || resp.Status != healthpb.HealthCheckResponse_NOT_SERVING {
		t.Errorf("health during shutdown = %v, %v", resp, err)
	}

	close(release)
	r := <-sent
	if r.err != nil || r.resp.MessageId != "SM-drained" {
		t.Fatalf("in-flight send = %v, %v", r.resp, r.err)
	}
	<-shutdown
	if err := <-served; err != nil {
		t.Errorf("Serve = %v", err)
	}
}

// TestShutdownDeadline: when Shutdown's context ends first, in-flight RPCs are cancelled, each
// answers its caller with its status, and Shutdown returns.
func TestShutdownDeadline(t *testing.T) {
	entered := make(chan struct{})
	fake := &fakeConnector{send: func(ctx context.Context, _ *connector.Message) (*connector.Receipt, error) {
		close(entered)
		<-ctx.Done()
		return nil, ctx.Err()
	}}
	srv, err := New(Options{Connector: fake})
	if err != nil {
		t.Fatal(err)
	}
	l, err := Listen("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(l) }()
	conn, err := grpc.NewClient(l.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	sent := make(chan error, 1)
	go func() {
		_, err := smsv1.NewSmsConnectorClient(conn).SendMessage(ctxFor(t), validRequest(t))
		sent <- err
	}()
	<-entered
	expired, cancel := context.WithCancel(context.Background())
	cancel()
	srv.Shutdown(expired)
	// The send was cancelled, not cut off: its caller gets a status with ErrorInfo, not the
	// bare UNAVAILABLE of a closed connection.
	if err := <-sent; status.Code(err) != codes.Unavailable || protoconv.ErrorInfoOf(err).GetReason() != string(connector.ReasonProviderOutcomeUnknown) {
		t.Errorf("the in-flight send got %v, want UNAVAILABLE with reason PROVIDER_OUTCOME_UNKNOWN", err)
	}
	if err := <-served; err != nil {
		t.Errorf("Serve = %v", err)
	}
}

func TestUnixSocket(t *testing.T) {
	dir, err := os.MkdirTemp("", "smsc")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "c.sock")

	t.Run("serve", func(t *testing.T) {
		h := start(t, &fakeConnector{}, "unix://"+path, nil)
		fi, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Type() != os.ModeSocket || fi.Mode().Perm() != 0o600 {
			t.Errorf("socket mode = %v, want socket 0600", fi.Mode())
		}
		if resp, err := h.client.SendMessage(ctxFor(t), validRequest(t)); err != nil || resp.ConnectorId != fakeID {
			t.Fatalf("send over the unix socket = %v, %v", resp, err)
		}
		if _, err := Listen("unix://" + path); err == nil {
			t.Error("a second Listen took over a live socket")
		}
		entries, _ := os.ReadDir(dir)
		if len(entries) != 1 {
			t.Errorf("directory holds %v, want only the socket", entries)
		}
	})
	if _, err := os.Lstat(path); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("socket file left after shutdown: %v", err)
	}

	t.Run("stale socket", func(t *testing.T) {
		l, err := Listen("unix://" + path)
		if err != nil {
			t.Fatal(err)
		}
		// Simulate a crash: the listener goes away, its file stays.
		ul := l.(*unixListener)
		ul.UnixListener.Close()
		if _, err := os.Lstat(path); err != nil {
			t.Fatal(err)
		}
		l2, err := Listen("unix:" + path)
		if err != nil {
			t.Fatalf("stale socket not replaced: %v", err)
		}
		if l2.Addr().String() != path || l2.Addr().Network() != "unix" {
			t.Errorf("Addr = %s %s", l2.Addr().Network(), l2.Addr())
		}
		l2.Close()
	})

	t.Run("not a socket", func(t *testing.T) {
		file := filepath.Join(dir, "data")
		if err := os.WriteFile(file, []byte("keep me"), 0o600); err != nil {
			t.Fatal(err)
		}
		if _, err := Listen("unix://" + file); err == nil {
			t.Error("Listen replaced a regular file")
		}
		if b, err := os.ReadFile(file); err != nil || string(b) != "keep me" {
			t.Errorf("file = %q, %v", b, err)
		}
	})

	for _, addr := range []string{"", "unix://", "unix:"} {
		if _, err := Listen(addr); err == nil {
			t.Errorf("Listen(%q) succeeded", addr)
		}
	}
}

// TestNonJSONNumbers: numbers JSON cannot hold reach the connector as the proto3 JSON
// mapping writes them (strings), not as a failure.
func TestNonJSONNumbers(t *testing.T) {
	h := start(t, &fakeConnector{}, "", nil)
	cfg := mustStruct(t, map[string]any{"x": "ok", "n": math.NaN(), "i": math.Inf(-1)})
	req := validRequest(t)
	req.Config = cfg
	if _, err := h.client.SendMessage(ctxFor(t), req); err != nil {
		t.Fatal(err)
	}
	if got := string(h.fake.messages()[0].Config); got != `{"i":"-Infinity","n":"NaN","x":"ok"}` {
		t.Errorf("config = %s", got)
	}
	resp, err := h.client.ValidateConfig(ctxFor(t), &smsv1.ValidateConfigRequest{Config: cfg})
	if err != nil || !resp.Valid {
		t.Errorf("ValidateConfig = %v, %v", resp, err)
	}
}

func TestServiceName(t *testing.T) {
	if ServiceName != smsv1.SmsConnector_ServiceDesc.ServiceName {
		t.Errorf("ServiceName = %q, generated %q", ServiceName, smsv1.SmsConnector_ServiceDesc.ServiceName)
	}
}
