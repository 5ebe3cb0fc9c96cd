package telemetry

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	"google.golang.org/grpc/metadata"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/structpb"

	"github.com/sms-connector/sms-connector/connector"
	smsv1 "github.com/sms-connector/sms-connector/gen/connector/sms/v1"
	"github.com/sms-connector/sms-connector/internal/testutil"
	"github.com/sms-connector/sms-connector/server"
)

// Distinctive values the span checks look for: none may appear in any span.
const (
	testToken     = "TrAcEsEcReTtOkEn0TrAcEsEcReTtOk1"
	testTo        = "+14155550199"
	testInvalidTo = "+15005550001"
	testCode      = "987123"
)

// providerRefusal is the vendor's answer to the second send of a stack: a provider error
// whose text quotes the recipient and the secret, which no span may repeat.
var providerRefusal = &connector.Error{Reason: connector.ReasonInvalidPhoneNumber, Provider: "fake", ProviderCode: "21211",
	Message: "fake: " + testInvalidTo + " is not a number (token " + testToken + ")"}

// stack serves a fakeVendor over gRPC on loopback, instrumented by tel, and returns a client.
// The vendor accepts the first send and refuses the second with providerRefusal. The request
// config carries testToken.
type stack struct {
	client smsv1.SmsConnectorClient
	config *structpb.Struct
}

func startStack(t *testing.T, tel *Telemetry) *stack {
	t.Helper()
	ctx := context.Background()
	vendor, err := tel.WrapVendor(ctx, &fakeVendor{errs: []error{nil, providerRefusal}})
	if err != nil {
		t.Fatal(err)
	}
	conn, err := tel.WrapSends(ctx, vendor)
	if err != nil {
		t.Fatal(err)
	}
	srv, err := server.New(server.Options{Connector: conn, ServerOptions: tel.ServerOptions()})
	if err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = srv.Serve(l) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(ctx)
	})
	cc := testutil.Dial(t, "passthrough:///"+l.Addr().String())
	cfg, err := structpb.NewStruct(map[string]any{"authToken": testToken})
	if err != nil {
		t.Fatal(err)
	}
	return &stack{client: smsv1.NewSmsConnectorClient(cc), config: cfg}
}

// send sends testCode to to through the stack.
func (s *stack) send(ctx context.Context, to string) error {
	_, err := s.client.SendMessage(ctx, &smsv1.SendMessageRequest{
		To:        to,
		UsageType: smsv1.UsageType_USAGE_TYPE_SIGN_IN,
		Payload:   &smsv1.Payload{Code: testCode},
		Config:    s.config,
	})
	return err
}

// forbidden is what no span may carry: the recipients' digits, the code and the secret.
var forbidden = []string{"4155550199", "5005550001", testCode, testToken}

// checkClean fails when any text of a span carries a forbidden value.
func checkClean(t *testing.T, s sdktrace.ReadOnlySpan) {
	t.Helper()
	var texts []string
	add := func(kvs []attribute.KeyValue) {
		for _, kv := range kvs {
			texts = append(texts, string(kv.Key)+"="+kv.Value.String())
		}
	}
	texts = append(texts, s.Name(), s.Status().Description)
	add(s.Attributes())
	add(s.Resource().Attributes())
	for _, e := range s.Events() {
		texts = append(texts, e.Name)
		add(e.Attributes)
	}
	for _, l := range s.Links() {
		add(l.Attributes)
	}
	for _, text := range texts {
		for _, f := range forbidden {
			if strings.Contains(text, f) {
				t.Errorf("span %q carries %q in %q", s.Name(), f, text)
			}
		}
	}
}

// attr returns the value of the attribute key of s, "" when absent.
func attr(s sdktrace.ReadOnlySpan, key string) string {
	for _, kv := range s.Attributes() {
		if string(kv.Key) == key {
			return kv.Value.String()
		}
	}
	return ""
}

func TestTracingSpans(t *testing.T) {
	exp := tracetest.NewInMemoryExporter()
	tel, err := Start(context.Background(), Options{SpanExporter: exp, ServiceName: "sms-connector-test"})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = tel.Shutdown(context.Background()) }()
	s := startStack(t, tel)

	// The caller has a trace of its own: the RPC span continues it.
	parent := trace.NewSpanContext(trace.SpanContextConfig{
		TraceID:    trace.TraceID{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16},
		SpanID:     trace.SpanID{1, 2, 3, 4, 5, 6, 7, 8},
		TraceFlags: trace.FlagsSampled,
	})
	ctx := metadata.AppendToOutgoingContext(context.Background(), "traceparent",
		fmt.Sprintf("00-%s-%s-01", parent.TraceID(), parent.SpanID()))
	if err := s.send(ctx, testTo); err != nil {
		t.Fatal(err)
	}
	if err := s.send(context.Background(), testInvalidTo); err == nil {
		t.Fatal("the send the vendor refuses succeeded")
	}

	// The server ends an RPC's span after the client has its answer: wait for all four (the
	// deadline is a guard against a hang, not a check).
	for deadline := time.Now().Add(10 * time.Second); len(exp.GetSpans()) < 4 && time.Now().Before(deadline); {
		time.Sleep(time.Millisecond)
	}
	spans := exp.GetSpans().Snapshots()
	var rpcs, providers []sdktrace.ReadOnlySpan
	for _, sp := range spans {
		checkClean(t, sp)
		switch sp.Name() {
		case "connector.sms.v1.SmsConnector/SendMessage":
			rpcs = append(rpcs, sp)
		case ProviderSpanName:
			providers = append(providers, sp)
		}
	}
	if len(rpcs) != 2 || len(providers) != 2 {
		names := make([]string, len(spans))
		for i, sp := range spans {
			names[i] = sp.Name()
		}
		t.Fatalf("spans %q: want 2 SendMessage RPC spans and 2 provider spans", names)
	}
	// A provider span ends before its answer, an RPC span after: order the RPCs as the sends.
	slices.SortFunc(rpcs, func(a, b sdktrace.ReadOnlySpan) int { return a.StartTime().Compare(b.StartTime()) })
	for i := range 2 {
		rpc, prov := rpcs[i], providers[i]
		if rpc.SpanKind() != trace.SpanKindServer || prov.SpanKind() != trace.SpanKindClient {
			t.Errorf("kinds: rpc %v, provider %v", rpc.SpanKind(), prov.SpanKind())
		}
		if prov.Parent().SpanID() != rpc.SpanContext().SpanID() || prov.SpanContext().TraceID() != rpc.SpanContext().TraceID() {
			t.Errorf("send %d: the provider span is not a child of the RPC span", i)
		}
		if got := attr(prov, attrConnector); got != "fake-sms" {
			t.Errorf("provider span %s = %q", attrConnector, got)
		}
		if got := attr(prov, attrCallingCode); got != "1" {
			t.Errorf("provider span %s = %q, want 1", attrCallingCode, got)
		}
		if got := attr(prov, attrUsageType); got != string(connector.UsageSignIn) {
			t.Errorf("provider span %s = %q", attrUsageType, got)
		}
		if got := prov.Resource().Attributes(); !strings.Contains(fmt.Sprint(got), "sms-connector-test") {
			t.Errorf("resource %v lacks the service name", got)
		}
	}
	if rpcs[0].Parent().TraceID() != parent.TraceID() || rpcs[0].Parent().SpanID() != parent.SpanID() {
		t.Errorf("the RPC span does not continue the caller's trace: parent %v", rpcs[0].Parent())
	}
	ok, failed := providers[0], providers[1]
	if attr(ok, attrOutcome) != OutcomeOK || attr(ok, attrSegments) != "1" || !strings.HasPrefix(attr(ok, attrMessageID), "SM") {
		t.Errorf("successful provider span: %v", ok.Attributes())
	}
	if attr(failed, attrProviderCode) != "21211" || attr(failed, attrErrorType) != string(connector.ReasonInvalidPhoneNumber) ||
		attr(failed, attrProvider) != "fake" || failed.Status().Description != string(connector.ReasonInvalidPhoneNumber) {
		t.Errorf("failed provider span: %v, status %v", failed.Attributes(), failed.Status())
	}
}

func TestTracingOffByDefault(t *testing.T) {
	tel, err := Start(context.Background(), Options{Getenv: func(string) string { return "" }})
	if err != nil {
		t.Fatal(err)
	}
	if tel.TracerProvider() != nil || tel.Metrics() != nil || len(tel.ServerOptions()) != 0 || tel.MetricsAddr() != "" {
		t.Fatalf("telemetry is on without being asked for")
	}
	v := &fakeVendor{}
	if c, _ := tel.WrapVendor(context.Background(), v); c != connector.SmsConnector(v) {
		t.Error("WrapVendor wrapped with everything off")
	}
	if c, _ := tel.WrapSends(context.Background(), v); c != connector.SmsConnector(v) {
		t.Error("WrapSends wrapped with everything off")
	}
	if err := tel.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	var none *Telemetry
	if none.ServerOptions() != nil || none.Shutdown(context.Background()) != nil {
		t.Error("a nil *Telemetry is not inert")
	}
}

// otlpReceiver is an OTLP/HTTP traces receiver: it decodes each POST /v1/traces.
type otlpReceiver struct {
	mu    sync.Mutex
	paths []string
	spans []string // names
	got   chan struct{}
}

func (r *otlpReceiver) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	body, _ := io.ReadAll(req.Body)
	var export coltracepb.ExportTraceServiceRequest
	if req.Method != http.MethodPost || req.Header.Get("Content-Type") != "application/x-protobuf" || proto.Unmarshal(body, &export) != nil {
		http.Error(w, "want a protobuf ExportTraceServiceRequest", http.StatusBadRequest)
		return
	}
	r.mu.Lock()
	r.paths = append(r.paths, req.URL.Path)
	for _, rs := range export.GetResourceSpans() {
		for _, ss := range rs.GetScopeSpans() {
			for _, sp := range ss.GetSpans() {
				r.spans = append(r.spans, sp.GetName())
				for _, kv := range sp.GetAttributes() {
					for _, f := range forbidden {
						if strings.Contains(kv.String(), f) {
							r.spans = append(r.spans, "LEAK "+kv.String())
						}
					}
				}
			}
		}
	}
	r.mu.Unlock()
	select {
	case r.got <- struct{}{}:
	default:
	}
	resp, _ := proto.Marshal(&coltracepb.ExportTraceServiceResponse{})
	w.Header().Set("Content-Type", "application/x-protobuf")
	_, _ = w.Write(resp)
}

func TestOTLPExport(t *testing.T) {
	rcv := &otlpReceiver{got: make(chan struct{}, 1)}
	hs := httptest.NewServer(rcv)
	defer hs.Close()
	// The endpoint comes from the standard variable, as a collector's base URL.
	env := map[string]string{EnvOTLPEndpoint: hs.URL}
	tel, err := Start(context.Background(), Options{Getenv: func(k string) string { return env[k] }})
	if err != nil {
		t.Fatal(err)
	}
	if tel.TracerProvider() == nil {
		t.Fatal("tracing is off with OTEL_EXPORTER_OTLP_ENDPOINT set")
	}
	s := startStack(t, tel)
	if err := s.send(context.Background(), testTo); err != nil {
		t.Fatal(err)
	}
	// Shutdown flushes the batch.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := tel.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	rcv.mu.Lock()
	defer rcv.mu.Unlock()
	if len(rcv.paths) == 0 || rcv.paths[0] != "/v1/traces" {
		t.Fatalf("the receiver got %v, want POST /v1/traces", rcv.paths)
	}
	got := strings.Join(rcv.spans, ",")
	for _, want := range []string{"connector.sms.v1.SmsConnector/SendMessage", ProviderSpanName} {
		if !strings.Contains(got, want) {
			t.Errorf("exported spans %q lack %q", got, want)
		}
	}
	if strings.Contains(got, "LEAK") {
		t.Errorf("an exported span carries a number, the code or the secret: %s", got)
	}
}

func TestTracesEndpoint(t *testing.T) {
	for _, tc := range []struct {
		flag    string
		env     map[string]string
		want    string
		wantErr bool
	}{
		{"", nil, "", false},
		{"http://127.0.0.1:4318", nil, "http://127.0.0.1:4318/v1/traces", false},
		{"https://otel.example.com/", nil, "https://otel.example.com/v1/traces", false},
		{"https://otel.example.com/custom/traces", nil, "https://otel.example.com/custom/traces", false},
		{"", map[string]string{EnvOTLPEndpoint: "http://c:4318"}, "http://c:4318/v1/traces", false},
		{"", map[string]string{EnvOTLPTracesEndpoint: "http://c:4318/x", EnvOTLPEndpoint: "http://d"}, "http://c:4318/x", false},
		{"http://flag:1", map[string]string{EnvOTLPEndpoint: "http://env:2"}, "http://flag:1/v1/traces", false},
		{"http://flag:1", map[string]string{EnvSDKDisabled: "true"}, "", false},
		{"", map[string]string{EnvOTLPEndpoint: "http://c:4318", EnvTracesExporter: "none"}, "", false},
		{"127.0.0.1:4318", nil, "", true},
		{"grpc://c:4317", nil, "", true},
		{"http://", nil, "", true},
	} {
		got, err := TracesEndpoint(tc.flag, func(k string) string { return tc.env[k] })
		if got != tc.want || (err != nil) != tc.wantErr {
			t.Errorf("TracesEndpoint(%q, %v) = %q, %v; want %q, error %v", tc.flag, tc.env, got, err, tc.want, tc.wantErr)
		}
	}
	// A URL's user information never reaches an error message.
	if _, err := TracesEndpoint("ftp://user:hunter2@c", nil); err == nil || strings.Contains(err.Error(), "hunter2") {
		t.Errorf("error %v", err)
	}
}

func TestStartServesMetrics(t *testing.T) {
	tel, err := Start(context.Background(), Options{MetricsListen: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.Get("http://" + tel.MetricsAddr() + MetricsPath)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(b), "go_goroutines") {
		t.Fatalf("GET /metrics: %d\n%s", resp.StatusCode, b)
	}
	if err := tel.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	if _, err := http.Get("http://" + tel.MetricsAddr() + MetricsPath); err == nil {
		t.Error("the metrics listener still answers after Shutdown")
	}
	if _, err := Start(context.Background(), Options{MetricsListen: "not an address"}); err == nil {
		t.Error("a bad --metrics-listen was accepted")
	}
}
