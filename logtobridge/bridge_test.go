package logtobridge_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"
	"google.golang.org/grpc/codes"

	"github.com/sms-connector/sms-connector/connector"
	"github.com/sms-connector/sms-connector/connector/guard"
	"github.com/sms-connector/sms-connector/connector/twilio"
	"github.com/sms-connector/sms-connector/connector/twilio/twiliotest"
	smsv1 "github.com/sms-connector/sms-connector/gen/connector/sms/v1"
	"github.com/sms-connector/sms-connector/internal/protoconv"
	"github.com/sms-connector/sms-connector/logtobridge"
	"github.com/sms-connector/sms-connector/sdk"
	"github.com/sms-connector/sms-connector/server"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// testToken is the bridge's bearer token: no answer or log line may ever hold it.
const testToken = "BrIdGeToKeN0BrIdGeToKeN0BrIdGeTo"

// testMaxBytes is the bridge's body limit in these tests.
const testMaxBytes = 64 << 10

// stack is the real served stack: the Twilio emulator, the Twilio connector over twilio-go,
// the SDK's defences, the gRPC server and the bridge over loopback HTTP.
type stack struct {
	emu  *twiliotest.Server
	url  string // the bridge's base URL
	logs *observer.ObservedLogs
}

// stackConfig is the server's default config: the emulator's account, a template for every
// usage type, a French SignIn template and a Register template with a free variable.
func stackConfig(t testing.TB) json.RawMessage {
	t.Helper()
	type tmpl struct {
		UsageType string `json:"usageType"`
		Content   string `json:"content"`
		Locale    string `json:"locale,omitempty"`
	}
	var ts []tmpl
	for _, u := range connector.UsageTypes() {
		if u != connector.UsageRegister {
			ts = append(ts, tmpl{UsageType: string(u), Content: fmt.Sprintf("Your %s code is {{code}}.", u)})
		}
	}
	ts = append(ts,
		tmpl{UsageType: "SignIn", Locale: "fr", Content: "Votre code de connexion est {{code}}."},
		tmpl{UsageType: "Register", Content: "Welcome to {{appName}}: {{code}}."})
	raw, err := json.Marshal(map[string]any{
		"accountSID": twiliotest.SandboxAccountSID, "authToken": twiliotest.SandboxAuthToken,
		"from": twiliotest.FromValid, "templates": ts,
	})
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

func newStack(t *testing.T) *stack {
	t.Helper()
	emu := twiliotest.NewServer()
	t.Cleanup(emu.Close)
	vendor, err := twilio.New(twilio.Options{APIURL: emu.URL})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = vendor.Close() })
	policy := sdk.SandboxPolicy()
	policy.Recipient = []guard.Limit{{Max: 1, Window: time.Hour}}
	conn, err := sdk.Defend(vendor, sdk.Defences{Guard: true, GuardOptions: guard.Options{Policy: policy},
		IdempotencyWindow: time.Minute, MaxConcurrentSends: 8})
	if err != nil {
		t.Fatal(err)
	}
	core, logs := observer.New(zapcore.DebugLevel)
	log := zap.New(core)
	srv, err := server.New(server.Options{Connector: conn, DefaultConfig: stackConfig(t), Logger: log, StreamWorkers: -1})
	if err != nil {
		t.Fatal(err)
	}
	b, err := logtobridge.New(logtobridge.Options{Sender: srv, Token: testToken, MaxRequestBytes: testMaxBytes, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- b.Serve(l) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		b.Shutdown(ctx)
		srv.Shutdown(ctx)
		if err := <-served; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	return &stack{emu: emu, url: "http://" + l.Addr().String(), logs: logs}
}

// answer is one HTTP answer of the bridge.
type answer struct {
	status int
	header http.Header
	body   []byte
}

// errorBody decodes the answer as an ErrorBody, failing the test if it is not one.
func (a answer) errorBody(t *testing.T) logtobridge.ErrorBody {
	t.Helper()
	var b logtobridge.ErrorBody
	dec := json.NewDecoder(strings.NewReader(string(a.body)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&b); err != nil {
		t.Fatalf("the body %q is not an ErrorBody: %v", a.body, err)
	}
	return b
}

// req describes one request to the bridge.
type req struct {
	method, path, contentType, auth string
	header                          map[string]string
	body                            string
}

// logtoReq is a POST to /logto/sms as Logto's HTTP SMS connector sends it.
func logtoReq(body string) req {
	return req{method: http.MethodPost, path: logtobridge.PathLogtoSMS, contentType: "application/json", auth: "Bearer " + testToken, body: body}
}

func (s *stack) do(t *testing.T, r req) answer {
	t.Helper()
	hr, err := http.NewRequestWithContext(t.Context(), r.method, s.url+r.path, strings.NewReader(r.body))
	if err != nil {
		t.Fatal(err)
	}
	if r.contentType != "" {
		hr.Header.Set("Content-Type", r.contentType)
	}
	if r.auth != "" {
		hr.Header.Set("Authorization", r.auth)
	}
	for k, v := range r.header {
		hr.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(hr)
	if err != nil {
		t.Fatalf("%s %s: %v", r.method, r.path, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(body), testToken) || strings.Contains(string(body), twiliotest.SandboxAuthToken) {
		t.Fatalf("the answer holds a secret: %s", body)
	}
	return answer{status: resp.StatusCode, header: resp.Header, body: body}
}

// deepJSON nests n arrays.
func deepJSON(n int) string { return strings.Repeat("[", n) + strings.Repeat("]", n) }

// TestBadInputs sends each malformed or hostile request and checks its documented status and
// reason (docs/logto.md, "Bad input"), that nothing reached Twilio and that the answer holds
// no secret.
func TestBadInputs(t *testing.T) {
	s := newStack(t)
	const ok = `"to":"+15005550006","type":"SignIn"`
	tests := []struct {
		name        string
		req         req
		status      int
		reason      string
		msgContains string
	}{
		{"GET", req{method: http.MethodGet, path: logtobridge.PathLogtoSMS, auth: "Bearer " + testToken}, 405, "INVALID_REQUEST", "POST"},
		{"PUT", func() req { r := logtoReq(`{` + ok + `,"payload":{"code":"1"}}`); r.method = http.MethodPut; return r }(), 405, "INVALID_REQUEST", "POST"},
		{"unknown path", func() req { r := logtoReq(`{}`); r.path = "/logto/email"; return r }(), 404, "INVALID_REQUEST", "/logto/sms"},
		{"root path", func() req { r := logtoReq(`{}`); r.path = "/"; return r }(), 404, "INVALID_REQUEST", "no such path"},
		{"no Authorization", func() req { r := logtoReq(`{` + ok + `,"payload":{"code":"1"}}`); r.auth = ""; return r }(), 401, "UNAUTHENTICATED", "Bearer"},
		{"wrong token", func() req {
			r := logtoReq(`{` + ok + `,"payload":{"code":"1"}}`)
			r.auth = "Bearer " + strings.ToLower(testToken)
			return r
		}(), 401, "UNAUTHENTICATED", ""},
		{"token without Bearer", func() req { r := logtoReq(`{` + ok + `,"payload":{"code":"1"}}`); r.auth = testToken; return r }(), 401, "UNAUTHENTICATED", ""},
		{"Basic scheme", func() req {
			r := logtoReq(`{` + ok + `,"payload":{"code":"1"}}`)
			r.auth = "Basic " + testToken
			return r
		}(), 401, "UNAUTHENTICATED", ""},
		{"no content type", func() req { r := logtoReq(`{` + ok + `,"payload":{"code":"1"}}`); r.contentType = ""; return r }(), 415, "INVALID_REQUEST", "application/json"},
		{"text/plain", func() req {
			r := logtoReq(`{` + ok + `,"payload":{"code":"1"}}`)
			r.contentType = "text/plain"
			return r
		}(), 415, "INVALID_REQUEST", "application/json"},
		{"form", func() req {
			r := logtoReq("to=%2B15005550006")
			r.contentType = "application/x-www-form-urlencoded"
			return r
		}(), 415, "INVALID_REQUEST", ""},
		{"JSON in latin1", func() req {
			r := logtoReq(`{` + ok + `,"payload":{"code":"1"}}`)
			r.contentType = "application/json; charset=iso-8859-1"
			return r
		}(), 415, "INVALID_REQUEST", ""},
		{"oversize body", logtoReq(`{` + ok + `,"payload":{"code":"1","pad":"` + strings.Repeat("x", testMaxBytes) + `"}}`), 413, "INVALID_REQUEST", "larger than"},
		{"JSON nested beyond the decoder's bound", logtoReq(`{` + ok + `,"payload":{"code":"1","deep":` + deepJSON(20000) + `}}`), 400, "INVALID_REQUEST", "not a JSON object"},
		{"variables nested too deep", logtoReq(`{` + ok + `,"payload":{"code":"1","deep":` + deepJSON(12) + `}}`), 400, "INVALID_REQUEST", "payload is nested more than"},
		{"empty body", logtoReq(``), 400, "INVALID_REQUEST", "empty"},
		{"invalid JSON", logtoReq(`{"to":`), 400, "INVALID_REQUEST", "not a JSON object"},
		{"JSON array", logtoReq(`[]`), 400, "INVALID_REQUEST", "JSON array"},
		{"data after the object", logtoReq(`{` + ok + `,"payload":{"code":"1"}} {}`), 400, "INVALID_REQUEST", "after its JSON object"},
		{"unknown type", logtoReq(`{"to":"+15005550006","type":"Newsletter","payload":{"code":"1"}}`), 400, "INVALID_REQUEST", "type is not a known usage type"},
		{"missing type", logtoReq(`{"to":"+15005550006","payload":{"code":"1"}}`), 400, "INVALID_REQUEST", "type is required"},
		{"type not a string", logtoReq(`{"to":"+15005550006","type":3,"payload":{"code":"1"}}`), 400, "INVALID_REQUEST", "type must be a string"},
		{"missing to", logtoReq(`{"type":"SignIn","payload":{"code":"1"}}`), 400, "INVALID_PHONE_NUMBER", "to is required"},
		{"to not a phone number", logtoReq(`{"to":"call me","type":"SignIn","payload":{"code":"1"}}`), 400, "INVALID_PHONE_NUMBER", "to "},
		{"to a number", logtoReq(`{"to":15005550006,"type":"SignIn","payload":{"code":"1"}}`), 400, "INVALID_REQUEST", "to must be a string"},
		{"missing payload", logtoReq(`{` + ok + `}`), 400, "INVALID_REQUEST", "payload.code"},
		{"payload not an object", logtoReq(`{` + ok + `,"payload":"123456"}`), 400, "INVALID_REQUEST", "payload must be a JSON object"},
		{"code not a string", logtoReq(`{` + ok + `,"payload":{"code":123456}}`), 400, "INVALID_REQUEST", "payload.code must be a string"},
		{"code with a line break", logtoReq(`{` + ok + `,"payload":{"code":"12\n34"}}`), 400, "INVALID_REQUEST", "payload.code"},
		{"locale with a space", logtoReq(`{` + ok + `,"payload":{"code":"1","locale":"fr CA"}}`), 400, "INVALID_REQUEST", "payload.locale"},
		{"uiLocales a number", logtoReq(`{` + ok + `,"payload":{"code":"1","uiLocales":7}}`), 400, "INVALID_REQUEST", "payload.uiLocales"},
		{"link not a string", logtoReq(`{` + ok + `,"payload":{"code":"1","link":{"href":"x"}}}`), 400, "INVALID_REQUEST", "payload.link must be a string"},
		{"variable string too long", logtoReq(`{` + ok + `,"payload":{"code":"1","note":"` + strings.Repeat("y", 2000) + `"}}`), 400, "INVALID_REQUEST", "payload.note"},
		{"bad ip", logtoReq(`{` + ok + `,"payload":{"code":"1"},"ip":"999.1.1.1"}`), 400, "INVALID_REQUEST", "ip is not an IPv4 or IPv6 address"},
		{"ip not a string", logtoReq(`{` + ok + `,"payload":{"code":"1"},"ip":true}`), 400, "INVALID_REQUEST", "ip must be a string"},
		{"Idempotency-Key too long", func() req {
			r := logtoReq(`{` + ok + `,"payload":{"code":"1"}}`)
			r.header = map[string]string{"Idempotency-Key": strings.Repeat("k", 200)}
			return r
		}(), 400, "INVALID_REQUEST", "Idempotency-Key header"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := s.emu.Requests()
			a := s.do(t, tt.req)
			if a.status != tt.status {
				t.Fatalf("status %d, want %d; body %s", a.status, tt.status, a.body)
			}
			b := a.errorBody(t)
			if b.Reason != tt.reason || !strings.Contains(b.Message, tt.msgContains) || b.Retryable {
				t.Errorf("body %+v, want reason %s, a message containing %q, not retryable", b, tt.reason, tt.msgContains)
			}
			if want := map[int]string{400: "INVALID_ARGUMENT", 401: "UNAUTHENTICATED"}[tt.status]; want != "" && b.Code != want {
				t.Errorf("code %s, want %s", b.Code, want)
			}
			if tt.status == 401 && a.header.Get("WWW-Authenticate") == "" {
				t.Error("a 401 without WWW-Authenticate")
			}
			if tt.status == 405 && a.header.Get("Allow") != http.MethodPost {
				t.Errorf("Allow %q, want POST", a.header.Get("Allow"))
			}
			if n := s.emu.Requests() - before; n != 0 {
				t.Errorf("%d request(s) reached Twilio", n)
			}
		})
	}
	if n := len(s.emu.Messages()); n != 0 {
		t.Errorf("%d message(s) sent", n)
	}
	for _, e := range s.logs.All() {
		for k, v := range e.ContextMap() {
			if str := fmt.Sprint(v); strings.Contains(str, testToken) || strings.Contains(str, "15005550006") {
				t.Errorf("log line %q field %s holds a secret or a full phone number: %s", e.Message, k, str)
			}
		}
	}
}

// TestSends checks what arrives at Twilio for Logto's payloads, and the receipt.
func TestSends(t *testing.T) {
	s := newStack(t)
	tests := []struct {
		name, to, body, wantSMS string
	}{
		{"SignIn in fr-CA takes the French template", "+15005550006",
			`{"to":"+15005550006","type":"SignIn","payload":{"code":"424242","locale":"fr-CA","uiLocales":"fr-CA en"},"ip":"203.0.113.7"}`,
			"Votre code de connexion est 424242."},
		{"Test is sent as Generic, to without +", "+14155550101",
			`{"to":"14155550101","type":"Test","payload":{"code":"000000"}}`, "Your Generic code is 000000."},
		{"other payload keys are template variables", "+14155550102",
			`{"to":"+14155550102","type":"Register","payload":{"code":"777","appName":"Acme"}}`, "Welcome to Acme: 777."},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := s.do(t, logtoReq(tt.body))
			if a.status != http.StatusOK {
				t.Fatalf("status %d: %s", a.status, a.body)
			}
			var receipt struct {
				MessageID   string `json:"messageId"`
				To          string `json:"to"`
				ConnectorID string `json:"connectorId"`
			}
			if err := json.Unmarshal(a.body, &receipt); err != nil || !strings.HasPrefix(receipt.MessageID, "SM") || receipt.ConnectorID == "" {
				t.Fatalf("receipt %s (%v)", a.body, err)
			}
			var got *twiliotest.Message
			for _, m := range s.emu.Messages() {
				if m.Sid == receipt.MessageID {
					got = &m
				}
			}
			if got == nil || got.Body != tt.wantSMS || got.To != tt.to {
				t.Fatalf("Twilio got %+v, want %q to %s", got, tt.wantSMS, tt.to)
			}
		})
	}
}

// TestRateLimitedAndIdempotent checks a second send to a recipient within the guard's window
// (429, Retry-After, RATE_LIMITED, retryable) and that a retry with the same Idempotency-Key
// gets the first answer without a second SMS.
func TestRateLimitedAndIdempotent(t *testing.T) {
	s := newStack(t)
	body := `{"to":"+14155550111","type":"SignIn","payload":{"code":"1234"}}`
	first := logtoReq(body)
	first.header = map[string]string{"Idempotency-Key": `"logto-retry-1"`}
	a1, a2 := s.do(t, first), s.do(t, first)
	if a1.status != 200 || string(a1.body) != string(a2.body) {
		t.Fatalf("idempotent retry: %d %s, then %d %s", a1.status, a1.body, a2.status, a2.body)
	}
	if n := len(s.emu.Messages()); n != 1 {
		t.Fatalf("%d messages sent, want 1", n)
	}
	a := s.do(t, logtoReq(body))
	if a.status != http.StatusTooManyRequests {
		t.Fatalf("status %d, want 429: %s", a.status, a.body)
	}
	b := a.errorBody(t)
	if b.Code != "RESOURCE_EXHAUSTED" || b.Reason != "RATE_LIMITED" || !b.Retryable || b.RetryAfterSeconds <= 0 ||
		a.header.Get("Retry-After") != fmt.Sprint(b.RetryAfterSeconds) {
		t.Errorf("answer %+v, Retry-After %q", b, a.header.Get("Retry-After"))
	}
}

// TestVendorFailures checks the statuses of Twilio's own failures.
func TestVendorFailures(t *testing.T) {
	s := newStack(t)
	tests := []struct {
		name   string
		fault  twiliotest.Fault
		to     string
		status int
		reason string
	}{
		{"Twilio 5xx: outcome unknown", twiliotest.Fault{Kind: twiliotest.FaultServerErrorJSON}, "+14155550120", 503, "PROVIDER_OUTCOME_UNKNOWN"},
		{"a 3xx is not an answer", twiliotest.Fault{Kind: twiliotest.FaultRedirect}, "+14155550121", 502, "PROVIDER_INVALID_RESPONSE"},
		{"opted out", twiliotest.Fault{}, twiliotest.ToOptedOut, 412, "RECIPIENT_OPTED_OUT"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.fault.Kind != 0 {
				s.emu.InjectFault(tt.fault, 10)
				defer s.emu.ClearFaults()
			}
			a := s.do(t, logtoReq(`{"to":"`+tt.to+`","type":"SignIn","payload":{"code":"1"}}`))
			if a.status != tt.status {
				t.Fatalf("status %d, want %d: %s", a.status, tt.status, a.body)
			}
			if b := a.errorBody(t); b.Reason != tt.reason || b.Retryable {
				t.Errorf("body %+v, want reason %s, not retryable", b, tt.reason)
			}
		})
	}
}

// TestHTTPStatusOfEveryReason checks the documented table (docs/logto.md) for every reason
// of the contract, through the same reason-to-code mapping as gRPC.
func TestHTTPStatusOfEveryReason(t *testing.T) {
	want := map[codes.Code]int{
		codes.InvalidArgument: 400, codes.Unauthenticated: 401, codes.FailedPrecondition: 412,
		codes.ResourceExhausted: 429, codes.Unavailable: 503, codes.DeadlineExceeded: 504,
		codes.Canceled: 499, codes.Internal: 500, codes.NotFound: 404, codes.Unimplemented: 501,
	}
	for n, name := range smsv1.ErrorReason_name {
		if n == int32(smsv1.ErrorReason_ERROR_REASON_UNSPECIFIED) {
			continue
		}
		r := connector.Reason(strings.TrimPrefix(name, "ERROR_REASON_"))
		code := protoconv.Status(&connector.Error{Reason: r}).Code()
		w, ok := want[code]
		if !ok {
			t.Errorf("reason %s: gRPC code %v has no documented HTTP status", r, code)
			continue
		}
		if r == connector.ReasonProviderUnavailable || r == connector.ReasonProviderInvalidResponse {
			w = 502
		}
		if got := logtobridge.HTTPStatus(code, r); got != w {
			t.Errorf("reason %s (%v): HTTP %d, want %d", r, code, got, w)
		}
	}
}

// TestRoutes: a route added beside the bridge is served on its listener without the bridge's
// bearer token (it authenticates itself), and a route that would shadow the bridge is refused.
func TestRoutes(t *testing.T) {
	extra := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusTeapot) })
	b, err := logtobridge.New(logtobridge.Options{Sender: routesSender{}, Token: "secret", Routes: map[string]http.Handler{"/vendor/status": extra}})
	if err != nil {
		t.Fatal(err)
	}
	rec := httptest.NewRecorder()
	b.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/vendor/status", nil))
	if rec.Code != http.StatusTeapot {
		t.Errorf("extra route answered %d, want its handler's 418", rec.Code)
	}
	rec = httptest.NewRecorder()
	b.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodPost, logtobridge.PathLogtoSMS, nil))
	if rec.Code != http.StatusUnauthorized {
		t.Errorf("bridge without token answered %d, want 401 still", rec.Code)
	}
	for _, path := range []string{logtobridge.PathLogtoSMS, "/", "relative"} {
		if _, err := logtobridge.New(logtobridge.Options{Sender: routesSender{}, Routes: map[string]http.Handler{path: extra}}); err == nil {
			t.Errorf("route %q accepted, want refused", path)
		}
	}
}

// routesSender sends nothing: TestRoutes never reaches a send.
type routesSender struct{}

func (routesSender) Send(context.Context, *connector.Message) (*smsv1.SendMessageResponse, error) {
	return nil, connector.Errorf(connector.ReasonInternal, "not used")
}
