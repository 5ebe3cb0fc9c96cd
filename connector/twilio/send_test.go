package twilio

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sms-connector/sms-connector/connector"
	"github.com/sms-connector/sms-connector/connector/twilio/twiliotest"
)

// Distinctive credentials: the leak checks look for them in every error.
const (
	emuToken     = "SeCrEtAuThToKeN0SeCrEtAuThToKeN0"
	emuKeySecret = "SeCrEtApIkEySeCrEt0SeCrEtApIkEy0"
	emuKeySID    = "SK" + "fedcba9876543210fedcba9876543210"
	emuService   = "MG" + "00000000000000000000000000000001"
	recipient    = "+14155550123"
)

// emulator starts a twiliotest server for testAccount (with emuToken and an API key) and a
// Connector with default Options pointed at it; both are closed when the test ends.
func emulator(t *testing.T, opts ...twiliotest.Option) (*twiliotest.Server, *Connector) {
	t.Helper()
	return emulatorWith(t, Options{}, opts...)
}

// emulatorWith is emulator with the Connector's Options o (APIURL is set to the emulator's).
// The Connector's retry waits are made instant (see instantSleep), so that no test sleeps.
func emulatorWith(t *testing.T, o Options, opts ...twiliotest.Option) (*twiliotest.Server, *Connector) {
	t.Helper()
	opts = append([]twiliotest.Option{
		twiliotest.WithAccount(testAccount, emuToken),
		twiliotest.WithAPIKey(emuKeySID, emuKeySecret),
	}, opts...)
	srv := twiliotest.NewServer(opts...)
	t.Cleanup(srv.Close)
	o.APIURL = srv.URL
	c, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	c.sleep = instantSleep
	t.Cleanup(func() { _ = c.Close() })
	return srv, c
}

// instantSleep stands in for the retry wait: it returns at once, or ctx's error when ctx has
// already ended.
func instantSleep(ctx context.Context, _ time.Duration) error { return ctx.Err() }

// emuConfig is a configuration for the emulator's account, sending through emuService, after
// applying mutate.
func emuConfig(t *testing.T, mutate ...func(map[string]any)) json.RawMessage {
	t.Helper()
	m := map[string]any{
		"accountSID":              testAccount,
		"authToken":               emuToken,
		"fromMessagingServiceSID": emuService,
		"templates": []any{
			tpl("Generic", "Your code is {{code}}"),
			tpl("SignIn", "Sign in with {{code}} at {{application.name}}"),
		},
	}
	for _, f := range mutate {
		f(m)
	}
	return rawJSON(t, m)
}

// withFrom sends from a number instead of the messaging service.
func withFrom(from string) func(map[string]any) {
	return func(m map[string]any) {
		delete(m, "fromMessagingServiceSID")
		m["from"] = from
	}
}

// message is a SignIn message to recipient with code 123456.
func message(cfg json.RawMessage) *connector.Message {
	return &connector.Message{
		To:        recipient,
		UsageType: connector.UsageSignIn,
		Payload:   connector.Payload{Code: "123456", Variables: map[string]any{"application": map[string]any{"name": "Acme"}}},
		Config:    cfg,
	}
}

// asError returns err's *connector.Error, failing the test when there is none.
func asError(t *testing.T, err error) *connector.Error {
	t.Helper()
	var e *connector.Error
	if !errors.As(err, &e) {
		t.Fatalf("error %v (%T) is not a *connector.Error", err, err)
	}
	return e
}

// checkNoSecrets fails the test when any text of err carries a credential of the emulator.
func checkNoSecrets(t *testing.T, err error) {
	t.Helper()
	if err == nil {
		return
	}
	texts := []string{err.Error(), fmt.Sprintf("%+v", err), fmt.Sprintf("%#v", err)}
	var e *connector.Error
	if errors.As(err, &e) {
		texts = append(texts, e.Message, e.MoreInfo, e.ProviderCode)
		for _, v := range e.Violations {
			texts = append(texts, v.Field, v.Description)
		}
		if e.Err != nil {
			texts = append(texts, e.Err.Error())
		}
	}
	for _, s := range texts {
		for _, secret := range []string{emuToken, emuKeySecret, "wrongtoken0wrongtoken0wrongtoken"} {
			if strings.Contains(s, secret) {
				t.Errorf("error text carries a secret: %q", s)
			}
		}
	}
}

func TestSendDeliversRenderedBody(t *testing.T) {
	srv, c := emulator(t)
	ctx := context.Background()

	r, err := c.Send(ctx, message(emuConfig(t)))
	if err != nil {
		t.Fatal(err)
	}
	msgs := srv.Messages()
	if len(msgs) != 1 {
		t.Fatalf("emulator has %d messages", len(msgs))
	}
	m := msgs[0]
	if m.Body != "Sign in with 123456 at Acme" || m.To != recipient || m.MessagingServiceSid != emuService || m.From != "" {
		t.Errorf("emulator got %+v", m)
	}
	if m.RiskCheck != "" || m.ValidityPeriod != 0 {
		t.Errorf("RiskCheck %q, ValidityPeriod %d sent without being configured", m.RiskCheck, m.ValidityPeriod)
	}
	want := connector.Receipt{MessageID: m.Sid, Status: "accepted", Segments: 1, Encoding: connector.EncodingGSM7, To: recipient, Sender: emuService}
	if *r != want {
		t.Errorf("receipt %+v, want %+v", *r, want)
	}

	// From a number, with the optional fields.
	cfg := emuConfig(t, withFrom(twiliotest.FromValid), func(m map[string]any) {
		m["validityPeriod"] = 600
		m["disableRiskCheck"] = true
	})
	msg := message(cfg)
	msg.UsageType = connector.UsageBindMfa // falls back to Generic
	msg.Payload.Code = "пароль"            // UCS-2
	r, err = c.Send(ctx, msg)
	if err != nil {
		t.Fatal(err)
	}
	m = srv.Messages()[1]
	if m.Body != "Your code is пароль" || m.From != twiliotest.FromValid || m.MessagingServiceSid != "" ||
		m.ValidityPeriod != 600 || m.RiskCheck != "disable" {
		t.Errorf("emulator got %+v", m)
	}
	want = connector.Receipt{MessageID: m.Sid, Status: "queued", Segments: 1, Encoding: connector.EncodingUCS2, To: recipient, Sender: twiliotest.FromValid}
	if *r != want {
		t.Errorf("receipt %+v, want %+v", *r, want)
	}
}

func TestSendPicksTemplateByLocale(t *testing.T) {
	srv, c := emulator(t)
	cfg := emuConfig(t, func(m map[string]any) {
		m["templates"] = []any{
			tpl("Generic", "default {{code}}"),
			tpl("Generic", "fr {{code}}", "fr"),
			tpl("Generic", "fr-CA {{code}}", "fr-CA"),
			tpl("SignIn", "de sign-in {{code}}", "de"),
			tpl("SignIn", "sign-in {{code}}"),
		}
	})
	tests := []struct {
		usage  connector.UsageType
		locale string
		want   string
	}{
		{connector.UsageRegister, "", "default 42"},
		{connector.UsageRegister, "fr-CA", "fr-CA 42"},
		{connector.UsageRegister, "fr-BE", "fr 42"},
		{connector.UsageRegister, "fr", "fr 42"},
		{connector.UsageRegister, "es", "default 42"},
		{connector.UsageSignIn, "de-AT", "de sign-in 42"},
		{connector.UsageSignIn, "fr", "fr 42"}, // Generic in the locale before SignIn without one
		{connector.UsageSignIn, "ja", "sign-in 42"},
	}
	for i, tt := range tests {
		msg := message(cfg)
		msg.UsageType, msg.Payload.Locale, msg.Payload.Code = tt.usage, tt.locale, "42"
		if _, err := c.Send(context.Background(), msg); err != nil {
			t.Fatalf("%s/%s: %v", tt.usage, tt.locale, err)
		}
		if got := srv.Messages()[i].Body; got != tt.want {
			t.Errorf("%s/%s: body %q, want %q", tt.usage, tt.locale, got, tt.want)
		}
	}
}

func TestSendWithAPIKey(t *testing.T) {
	srv, c := emulator(t)
	cfg := emuConfig(t, func(m map[string]any) {
		delete(m, "authToken")
		m["apiKeySID"] = emuKeySID
		m["apiKeySecret"] = emuKeySecret
	})
	r, err := c.Send(context.Background(), message(cfg))
	if err != nil {
		t.Fatal(err)
	}
	if msgs := srv.Messages(); len(msgs) != 1 || msgs[0].Sid != r.MessageID || msgs[0].AccountSid != testAccount {
		t.Errorf("messages %+v, receipt %+v", msgs, r)
	}

	cfg = emuConfig(t, func(m map[string]any) {
		m["apiKeySID"] = emuKeySID
		m["apiKeySecret"] = "wrongtoken0wrongtoken0wrongtoken"
	})
	_, err = c.Send(context.Background(), message(cfg))
	if e := asError(t, err); e.Reason != connector.ReasonProviderAuthFailed || e.ProviderCode != "20003" {
		t.Errorf("wrong API secret: %v", err)
	}
	checkNoSecrets(t, err)
}

// twilioErrorCases is every synchronous row of the design's Twilio table, provoked through the
// emulator, plus the other failures Send maps. Each runs against a fresh emulator, with one
// attempt per Send (MaxAttempts 1): this table is about how one answer maps; which answers are
// retried, and how, is retry_test.go's.
var twilioErrorCases = []struct {
	name   string
	setup  func(*twiliotest.Server)
	opts   []twiliotest.Option
	config []func(map[string]any)
	to     string
	reason connector.Reason
	code   string // ProviderCode; MoreInfo is Twilio's page for it
	retry  time.Duration
}{
	{name: "20003 wrong auth token", config: []func(map[string]any){func(m map[string]any) { m["authToken"] = "wrongtoken0wrongtoken0wrongtoken" }},
		reason: connector.ReasonProviderAuthFailed, code: "20003"},
	{name: "20404 unknown account", config: []func(map[string]any){func(m map[string]any) {
		m["accountSID"] = "AC" + strings.Repeat("9", 32)
		m["apiKeySID"], m["apiKeySecret"] = emuKeySID, emuKeySecret
	}}, reason: connector.ReasonProviderAccountNotFound, code: "20404"},
	{name: "20429 too many requests", setup: func(s *twiliotest.Server) {
		s.InjectFault(twiliotest.Fault{Kind: twiliotest.FaultTooManyRequests, RetryAfter: 3 * time.Second}, 1)
	}, reason: connector.ReasonProviderRateLimited, code: "20429", retry: 3 * time.Second},
	{name: "20429 without Retry-After", setup: func(s *twiliotest.Server) {
		s.InjectFault(twiliotest.Fault{Kind: twiliotest.FaultTooManyRequests}, 1)
	}, reason: connector.ReasonProviderRateLimited, code: "20429", retry: DefaultRetryAfter},
	{name: "21211 invalid To", to: twiliotest.ToInvalid, reason: connector.ReasonInvalidPhoneNumber, code: "21211"},
	{name: "21212 invalid From", config: []func(map[string]any){withFrom(twiliotest.FromInvalid)},
		reason: connector.ReasonInvalidSender, code: "21212"},
	{name: "21606 From not owned", config: []func(map[string]any){withFrom(twiliotest.FromNotOwned)},
		reason: connector.ReasonInvalidSender, code: "21606"},
	{name: "21606 unknown number", config: []func(map[string]any){withFrom("+447700900123")},
		reason: connector.ReasonInvalidSender, code: "21606"},
	{name: "21705 invalid messaging service", opts: []twiliotest.Option{twiliotest.WithMessagingServices("MG" + strings.Repeat("a", 32))},
		reason: connector.ReasonInvalidSender, code: "21705"},
	{name: "21408 no geo permission", to: twiliotest.ToNoGeoPermission, reason: connector.ReasonCountryNotPermitted, code: "21408"},
	{name: "21610 opted out", to: twiliotest.ToOptedOut, reason: connector.ReasonRecipientOptedOut, code: "21610"},
	{name: "21611 queue full", config: []func(map[string]any){withFrom(twiliotest.FromQueueFull)},
		reason: connector.ReasonProviderQueueFull, code: "21611"},
	{name: "21612 unreachable", to: twiliotest.ToUnreachable, reason: connector.ReasonRecipientUnreachable, code: "21612"},
	{name: "21614 not mobile", to: twiliotest.ToNotMobile, reason: connector.ReasonRecipientNotMobile, code: "21614"},
	{name: "21635 landline", to: twiliotest.ToLandline, reason: connector.ReasonRecipientNotMobile, code: "21635"},
	{name: "other 4xx: 21604 To missing", to: "-", reason: connector.ReasonProviderRejected, code: "21604"},
	{name: "5xx JSON", setup: func(s *twiliotest.Server) {
		s.InjectFault(twiliotest.Fault{Kind: twiliotest.FaultServerErrorJSON}, 1)
	}, reason: connector.ReasonProviderOutcomeUnknown, code: "20500"},
	{name: "503 JSON", setup: func(s *twiliotest.Server) {
		s.InjectFault(twiliotest.Fault{Kind: twiliotest.FaultServerErrorJSON, Status: 503}, 1)
	}, reason: connector.ReasonProviderOutcomeUnknown, code: "20500"},
	{name: "5xx HTML", setup: func(s *twiliotest.Server) {
		s.InjectFault(twiliotest.Fault{Kind: twiliotest.FaultServerErrorHTML}, 1)
	}, reason: connector.ReasonProviderOutcomeUnknown},
	{name: "429 HTML", setup: func(s *twiliotest.Server) {
		s.InjectFault(twiliotest.Fault{Kind: twiliotest.FaultServerErrorHTML, Status: 429, RetryAfter: 2 * time.Second}, 1)
	}, reason: connector.ReasonProviderRateLimited, retry: 2 * time.Second},
	{name: "403 HTML", setup: func(s *twiliotest.Server) {
		s.InjectFault(twiliotest.Fault{Kind: twiliotest.FaultServerErrorHTML, Status: 403}, 1)
	}, reason: connector.ReasonProviderRejected},
	{name: "connection reset", setup: func(s *twiliotest.Server) {
		s.InjectFault(twiliotest.Fault{Kind: twiliotest.FaultConnectionReset}, 1)
	}, reason: connector.ReasonProviderOutcomeUnknown},
	{name: "redirect", setup: func(s *twiliotest.Server) {
		s.InjectFault(twiliotest.Fault{Kind: twiliotest.FaultRedirect}, 1)
	}, reason: connector.ReasonProviderInvalidResponse},
}

func TestSendMapsTwilioErrors(t *testing.T) {
	for _, tt := range twilioErrorCases {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			srv, c := emulatorWith(t, Options{MaxAttempts: 1}, tt.opts...)
			if tt.setup != nil {
				tt.setup(srv)
			}
			msg := message(emuConfig(t, tt.config...))
			switch tt.to {
			case "":
			case "-":
				msg.To = ""
			default:
				msg.To = tt.to
			}
			r, err := c.Send(context.Background(), msg)
			if err == nil {
				t.Fatalf("Send succeeded: %+v", r)
			}
			t.Logf("%v", err)
			checkNoSecrets(t, err)
			e := asError(t, err)
			if e.Reason != tt.reason || e.ProviderCode != tt.code || e.Provider != Provider {
				t.Errorf("got %s/%s/%q, want %s/twilio/%q: %v", e.Reason, e.Provider, e.ProviderCode, tt.reason, tt.code, err)
			}
			wantInfo := ""
			if tt.code != "" {
				wantInfo = "https://www.twilio.com/docs/errors/" + tt.code
			}
			if e.MoreInfo != wantInfo {
				t.Errorf("MoreInfo %q, want %q", e.MoreInfo, wantInfo)
			}
			if e.RetryAfter != tt.retry {
				t.Errorf("RetryAfter %v, want %v", e.RetryAfter, tt.retry)
			}
			if e.Message == "" || e.Err == nil {
				t.Errorf("Message %q, Err %v: both must be set", e.Message, e.Err)
			}
			if strings.Contains(e.Message, "{") || strings.Contains(e.Message, "ApiError") || strings.Contains(e.Message, "<html") {
				t.Errorf("Message passes Twilio's raw answer on: %q", e.Message)
			}
			if !strings.HasPrefix(e.Err.Error(), "twilio: create message: ") {
				t.Errorf("Err %q is not wrapped with context", e.Err)
			}
			if n := srv.Requests(); n != 1 {
				t.Errorf("emulator saw %d requests, want 1 (MaxAttempts 1)", n)
			}
			if len(srv.Messages()) != 0 {
				t.Errorf("emulator recorded a message")
			}
		})
	}
}

func TestSendTimesOut(t *testing.T) {
	t.Run("RPC deadline", func(t *testing.T) {
		// Twilio and the connector's own timeout are both an hour away: only the caller's
		// 100 ms deadline can end this Send, and well within the 10 s allowed to it.
		srv, c := emulatorWith(t, Options{Timeout: time.Hour})
		srv.SetLatency(time.Hour)
		ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
		defer cancel()
		errc := make(chan error, 1)
		go func() {
			_, err := c.Send(ctx, message(emuConfig(t)))
			errc <- err
		}()
		var err error
		select {
		case err = <-errc:
		case <-time.After(10 * time.Second):
			t.Fatal("Send did not return 10 s after its 100 ms deadline") // the emulator's Close ends it
		}
		checkNoSecrets(t, err)
		if e := asError(t, err); e.Reason != connector.ReasonProviderTimeout || e.Provider != Provider {
			t.Errorf("got %v, want PROVIDER_TIMEOUT", err)
		}
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("%v does not wrap context.DeadlineExceeded", err)
		}
	})
	t.Run("attempt timeout", func(t *testing.T) {
		srv := twiliotest.NewServer(twiliotest.WithAccount(testAccount, emuToken))
		t.Cleanup(srv.Close)
		srv.SetLatency(30 * time.Second)
		c, err := New(Options{APIURL: srv.URL, Timeout: 100 * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = c.Close() })
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		_, err = c.Send(ctx, message(emuConfig(t)))
		if e := asError(t, err); e.Reason != connector.ReasonProviderTimeout {
			t.Errorf("got %v, want PROVIDER_TIMEOUT", err)
		}
	})
}

func TestSendCancelled(t *testing.T) {
	srv, c := emulator(t)
	srv.SetLatency(30 * time.Second)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	errc := make(chan error, 1)
	go func() {
		_, err := c.Send(ctx, message(emuConfig(t)))
		errc <- err
	}()
	for srv.Requests() == 0 { // wait until the request is in flight
		time.Sleep(5 * time.Millisecond)
	}
	cancel()
	err := <-errc
	if e := asError(t, err); e.Reason != connector.ReasonCancelled {
		t.Errorf("got %v, want CANCELLED", err)
	}
	if !errors.Is(err, context.Canceled) {
		t.Errorf("%v does not wrap context.Canceled", err)
	}
}

func TestSendConnectionRefused(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	c, err := New(Options{APIURL: "http://" + addr})
	if err != nil {
		t.Fatal(err)
	}
	c.sleep = instantSleep // the refused dials are retried; see TestRetryConnectionRefused
	t.Cleanup(func() { _ = c.Close() })
	_, err = c.Send(context.Background(), message(emuConfig(t)))
	checkNoSecrets(t, err)
	if e := asError(t, err); e.Reason != connector.ReasonProviderUnavailable || e.Provider != Provider {
		t.Errorf("got %v, want PROVIDER_UNAVAILABLE", err)
	}
}

func TestSendRefusesLongMessageLocally(t *testing.T) {
	srv, c := emulator(t)
	tests := []struct {
		name    string
		content string
		code    string
		wantErr bool
	}{
		{"1600 characters", strings.Repeat("a", 1592) + "{{code}}", "12345678", false},
		{"1601 characters", strings.Repeat("a", 1592) + "{{code}}", "123456789", true},
		{"1601 UTF-16 code units", strings.Repeat("😀", 796) + "{{code}}", "123456789", true},
		{"long variable", "{{code}} {{application.name}}", "1", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv.Reset()
			msg := message(emuConfig(t, func(m map[string]any) {
				m["templates"] = []any{tpl("Generic", tt.content)}
			}))
			msg.Payload.Code = tt.code
			msg.Payload.Variables = map[string]any{"application": map[string]any{"name": strings.Repeat("x", 1600)}}
			_, err := c.Send(context.Background(), msg)
			if !tt.wantErr {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if e := asError(t, err); e.Reason != connector.ReasonMessageTooLong {
				t.Errorf("got %v, want MESSAGE_TOO_LONG", err)
			}
			if n := srv.Requests(); n != 0 {
				t.Errorf("emulator saw %d requests, want 0", n)
			}
		})
	}
}

func TestSendConfigErrors(t *testing.T) {
	srv, c := emulator(t)
	for _, raw := range []string{"", " ", "null"} {
		_, err := c.Send(context.Background(), message(json.RawMessage(raw)))
		if e := asError(t, err); e.Reason != connector.ReasonConfigMissing {
			t.Errorf("config %q: got %v, want CONFIG_MISSING", raw, err)
		}
	}

	cfg := emuConfig(t, func(m map[string]any) {
		m["accountSID"] = "nope"
		m["authToken"] = "has a space " + emuToken
		m["validityPeriod"] = 0
	})
	_, err := c.Send(context.Background(), message(cfg))
	checkNoSecrets(t, err)
	e := asError(t, err)
	if e.Reason != connector.ReasonInvalidConfig || len(e.Violations) != 3 {
		t.Fatalf("got %v with %d violations, want INVALID_CONFIG with 3", err, len(e.Violations))
	}
	if !strings.Contains(e.Message, "3 problems") || !strings.Contains(e.Message, "accountSID") {
		t.Errorf("Message %q does not name the first problem", e.Message)
	}
	if _, err := c.Send(context.Background(), nil); connector.ReasonOf(err) != connector.ReasonInvalidRequest {
		t.Errorf("nil message: %v", err)
	}
	// No template for the usage type and no Generic: Logto's TEMPLATE_NOT_FOUND.
	noGeneric := emuConfig(t, func(m map[string]any) { m["templates"] = []any{tpl("SignIn", "Sign in with {{code}}")} })
	msg := message(noGeneric)
	msg.UsageType = connector.UsageRegister
	if _, err := c.Send(context.Background(), msg); connector.ReasonOf(err) != connector.ReasonTemplateNotFound {
		t.Errorf("no template and no Generic: got %v, want TEMPLATE_NOT_FOUND", err)
	}
	if n := srv.Requests(); n != 0 {
		t.Errorf("emulator saw %d requests, want 0", n)
	}
}

func TestSendConcurrently(t *testing.T) {
	srv, c := emulator(t)
	cfg := emuConfig(t)
	const n = 64
	var wg sync.WaitGroup
	ids := make([]string, n)
	errs := make([]error, n)
	for i := range n {
		wg.Go(func() {
			msg := message(cfg)
			msg.Payload.Code = fmt.Sprintf("%06d", i)
			if i%2 == 1 {
				msg.UsageType = connector.UsageRegister
			}
			r, err := c.Send(context.Background(), msg)
			if err == nil {
				ids[i] = r.MessageID
			}
			errs[i] = err
		})
	}
	wg.Wait()
	seen := map[string]bool{}
	for i, err := range errs {
		if err != nil {
			t.Fatalf("send %d: %v", i, err)
		}
		seen[ids[i]] = true
	}
	msgs := srv.Messages()
	if len(msgs) != n || len(seen) != n {
		t.Fatalf("%d messages, %d distinct ids; want %d", len(msgs), len(seen), n)
	}
	bodies := map[string]bool{}
	for _, m := range msgs {
		bodies[m.Body] = true
		if !seen[m.Sid] {
			t.Errorf("message %s not in any receipt", m.Sid)
		}
	}
	for i := range n {
		want := fmt.Sprintf("Sign in with %06d at Acme", i)
		if i%2 == 1 {
			want = fmt.Sprintf("Your code is %06d", i)
		}
		if !bodies[want] {
			t.Errorf("no message %q", want)
		}
	}
}

// recorder is a RoundTripper that records the requests and answers a canned message.
type recorder struct {
	mu   sync.Mutex
	reqs []*http.Request
	form []string
}

func (r *recorder) RoundTrip(req *http.Request) (*http.Response, error) {
	body, _ := io.ReadAll(req.Body)
	r.mu.Lock()
	r.reqs = append(r.reqs, req)
	r.form = append(r.form, string(body))
	r.mu.Unlock()
	return &http.Response{
		StatusCode: http.StatusCreated,
		Header:     http.Header{"Content-Type": {"application/json"}},
		Body:       io.NopCloser(strings.NewReader(`{"sid":"SM00000000000000000000000000000001","status":"queued","num_segments":"1"}`)),
		Request:    req,
	}, nil
}

func TestSendChoosesHost(t *testing.T) {
	t.Setenv("TWILIO_EDGE", "sydney") // twilio-go's environment override must not apply
	t.Setenv("TWILIO_REGION", "au1")
	rec := &recorder{}
	c, err := New(Options{Transport: rec})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct{ host, want string }{
		{"", "api.twilio.com"},
		{"api.twilio.com", "api.twilio.com"},
		{"api.dublin.ie1.twilio.com", "api.dublin.ie1.twilio.com"},
	}
	for i, tt := range tests {
		cfg := emuConfig(t, func(m map[string]any) { m["host"] = tt.host })
		if _, err := c.Send(context.Background(), message(cfg)); err != nil {
			t.Fatal(err)
		}
		req := rec.reqs[i]
		if req.URL.Scheme != "https" || req.URL.Host != tt.want || req.URL.Path != "/2010-04-01/Accounts/"+testAccount+"/Messages.json" {
			t.Errorf("host %q: request to %s", tt.host, req.URL)
		}
		if user, pass, ok := req.BasicAuth(); !ok || user != testAccount || pass != emuToken {
			t.Errorf("host %q: basic auth user %q", tt.host, user)
		}
		if req.Context().Done() == nil {
			t.Errorf("request is not bound to a cancellable context")
		}
		if !strings.Contains(req.Header.Get("User-Agent"), "sms-connector-twilio/"+Version) {
			t.Errorf("User-Agent %q", req.Header.Get("User-Agent"))
		}
	}

	// The operator's APIURL wins over the configuration's host.
	c, err = New(Options{Transport: rec, APIURL: "http://127.0.0.1:4010"})
	if err != nil {
		t.Fatal(err)
	}
	cfg := emuConfig(t, func(m map[string]any) { m["host"] = "api.dublin.ie1.twilio.com" })
	if _, err := c.Send(context.Background(), message(cfg)); err != nil {
		t.Fatal(err)
	}
	if u := rec.reqs[len(rec.reqs)-1].URL; u.Scheme != "http" || u.Host != "127.0.0.1:4010" {
		t.Errorf("request to %s, want the APIURL", u)
	}
}

func TestNewOptions(t *testing.T) {
	for _, u := range []string{"http://127.0.0.1:4010", "https://proxy.example.com", "http://[::1]:80/"} {
		if _, err := New(Options{APIURL: u}); err != nil {
			t.Errorf("APIURL %q: %v", u, err)
		}
	}
	for _, u := range []string{"127.0.0.1:4010", "ftp://x", "http://", "http://u:p@host", "http://host/path", "http://host?q=1", "://x"} {
		if _, err := New(Options{APIURL: u}); err == nil {
			t.Errorf("APIURL %q accepted", u)
		}
	}
	if _, err := New(Options{Timeout: -time.Second}); err == nil {
		t.Error("negative Timeout accepted")
	}
	c, err := New(Options{})
	if err != nil {
		t.Fatal(err)
	}
	if c.timeout != DefaultTimeout || c.ownTransport == nil || c.ownTransport.MaxIdleConnsPerHost != 256 {
		t.Errorf("defaults: timeout %v, transport %+v", c.timeout, c.ownTransport)
	}
	if c.maxAttempts != DefaultMaxAttempts || c.backoffBase != defaultBackoffBase || c.randN == nil || c.sleep == nil {
		t.Errorf("retry defaults: maxAttempts %d, backoffBase %v", c.maxAttempts, c.backoffBase)
	}
	if _, err := New(Options{MaxAttempts: -1}); err == nil {
		t.Error("negative MaxAttempts accepted")
	}
	if c, err := New(Options{MaxAttempts: 1}); err != nil || c.maxAttempts != 1 {
		t.Errorf("MaxAttempts 1: %v", err)
	}
}
