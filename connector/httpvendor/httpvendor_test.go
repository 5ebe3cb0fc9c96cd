package httpvendor

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/sms-connector/sms-connector/connector"
)

// TestMain fails the package's tests if any goroutine (an HTTP connection, a test server's
// handler) outlives them.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

var acme = Vendor{Provider: "acme", Name: "Acme"}

func TestRetryAfter(t *testing.T) {
	tests := []struct {
		h    string
		want time.Duration
	}{
		{"", 0},
		{"5", 5 * time.Second},
		{" 7 ", 7 * time.Second},
		{"0", 0},
		{"-3", 0},
		{"soon", 0},
		{"999999999999", MaxRetryAfter},
		{time.Now().Add(-time.Minute).UTC().Format(http.TimeFormat), 0},
		{time.Now().Add(48 * time.Hour).UTC().Format(http.TimeFormat), MaxRetryAfter},
	}
	for _, tt := range tests {
		if got := RetryAfter(tt.h); got != tt.want {
			t.Errorf("RetryAfter(%q) = %v, want %v", tt.h, got, tt.want)
		}
	}
	// An HTTP date some minutes ahead: about that long (the clock moves between the calls).
	if got := RetryAfter(time.Now().Add(10 * time.Minute).UTC().Format(http.TimeFormat)); got < 9*time.Minute || got > 10*time.Minute {
		t.Errorf("RetryAfter(date in 10m) = %v", got)
	}
}

func TestStatusReason(t *testing.T) {
	tests := []struct {
		status int
		want   connector.Reason
	}{
		{0, connector.ReasonProviderOutcomeUnknown},
		{101, connector.ReasonProviderOutcomeUnknown},
		{200, connector.ReasonProviderInvalidResponse},
		{201, connector.ReasonProviderInvalidResponse},
		{302, connector.ReasonProviderInvalidResponse},
		{400, connector.ReasonProviderRejected},
		{401, connector.ReasonProviderAuthFailed},
		{403, connector.ReasonProviderRejected},
		{404, connector.ReasonProviderRejected},
		{429, connector.ReasonProviderRateLimited},
		{500, connector.ReasonProviderOutcomeUnknown},
		{502, connector.ReasonProviderOutcomeUnknown},
		{503, connector.ReasonProviderOutcomeUnknown},
		{600, connector.ReasonProviderOutcomeUnknown},
	}
	for _, tt := range tests {
		if got := StatusReason(tt.status); got != tt.want {
			t.Errorf("StatusReason(%d) = %s, want %s", tt.status, got, tt.want)
		}
	}
}

// TestFailure: every branch of Vendor.Failure, and the rule that only a failure that proves
// nothing was sent, or that the vendor refused unprocessed, carries a RetryAfter.
func TestFailure(t *testing.T) {
	live := context.Background()
	cancelled, cancel := context.WithCancel(live)
	cancel()
	expired, cancel2 := context.WithDeadline(live, time.Unix(1, 0))
	defer cancel2()

	dial := &url.Error{Op: "Post", URL: "https://api.acme.test", Err: &net.OpError{Op: "dial", Net: "tcp", Err: errors.New("connection refused")}}
	dns := &url.Error{Op: "Post", URL: "https://api.acme.test", Err: &net.OpError{Op: "dial", Net: "tcp", Err: &net.DNSError{Err: "no such host", Name: "api.acme.test", IsNotFound: true}}}
	cert := &url.Error{Op: "Post", URL: "https://api.acme.test", Err: &tls.CertificateVerificationError{Err: errors.New("unknown authority")}}
	reset := &url.Error{Op: "Post", URL: "https://api.acme.test", Err: &net.OpError{Op: "read", Net: "tcp", Err: errors.New("connection reset by peer")}}
	timeout := &url.Error{Op: "Post", URL: "https://api.acme.test", Err: &net.OpError{Op: "read", Net: "tcp", Err: &timeoutError{}}}
	plain := errors.New("decoding: invalid character '<'")

	tests := []struct {
		name          string
		ctx, attempt  context.Context
		status        int
		retryAfter    string // the answer's Retry-After header
		err           error
		want          connector.Reason
		wantRetry     time.Duration
		wantRetryable bool
	}{
		{"caller cancelled", cancelled, cancelled, 0, "", reset, connector.ReasonCancelled, 0, false},
		{"caller cancelled during the dial", cancelled, cancelled, 0, "", dial, connector.ReasonCancelled, 0, false},
		{"caller's deadline", expired, expired, 0, "", reset, connector.ReasonProviderTimeout, 0, false},
		{"attempt's timeout", live, expired, 0, "", reset, connector.ReasonProviderTimeout, 0, false},
		{"connection refused", live, live, 0, "", dial, connector.ReasonProviderUnavailable, DefaultRetryAfter, true},
		{"no such host", live, live, 0, "", dns, connector.ReasonProviderUnavailable, DefaultRetryAfter, false},
		{"certificate", live, live, 0, "", cert, connector.ReasonProviderUnavailable, DefaultRetryAfter, false},
		{"reset after write", live, live, 0, "", reset, connector.ReasonProviderOutcomeUnknown, 0, false},
		{"network timeout", live, live, 0, "", timeout, connector.ReasonProviderTimeout, 0, false},
		{"no answer, plain error", live, live, 0, "", plain, connector.ReasonProviderOutcomeUnknown, 0, false},
		{"429", live, live, 429, "", plain, connector.ReasonProviderRateLimited, DefaultRetryAfter, true},
		{"429 with Retry-After", live, live, 429, "3", plain, connector.ReasonProviderRateLimited, 3 * time.Second, true},
		{"503 with Retry-After is not retryable", live, live, 503, "3", plain, connector.ReasonProviderOutcomeUnknown, 0, false},
		{"502 HTML", live, live, 502, "", plain, connector.ReasonProviderOutcomeUnknown, 0, false},
		{"401", live, live, 401, "", plain, connector.ReasonProviderAuthFailed, 0, false},
		{"403", live, live, 403, "", plain, connector.ReasonProviderRejected, 0, false},
		{"2xx that is not a message", live, live, 201, "", plain, connector.ReasonProviderInvalidResponse, 0, false},
		{"an answer does not beat the caller's cancel", cancelled, cancelled, 502, "", plain, connector.ReasonCancelled, 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tr := &Transport{Status: tt.status, Header: http.Header{}}
			if tt.retryAfter != "" {
				tr.Header.Set("Retry-After", tt.retryAfter)
			}
			err := fmt.Errorf("acme: send: %w", tt.err)
			e := acme.Failure(tt.ctx, tt.attempt, tr, err)
			if e.Reason != tt.want || e.RetryAfter != tt.wantRetry || e.Provider != "acme" {
				t.Errorf("got %s (RetryAfter %v, provider %q), want %s (RetryAfter %v): %v", e.Reason, e.RetryAfter, e.Provider, tt.want, tt.wantRetry, e)
			}
			if !errors.Is(e, tt.err) || e.Err != err {
				t.Errorf("%v does not keep the cause", e)
			}
			if e.Message == "" || !strings.Contains(e.Message, "Acme") {
				t.Errorf("Message %q does not name the vendor", e.Message)
			}
			if got := Retryable(e); got != tt.wantRetryable {
				t.Errorf("Retryable = %v, want %v", got, tt.wantRetryable)
			}
		})
	}
}

// timeoutError is a net.Error that timed out.
type timeoutError struct{}

func (*timeoutError) Error() string   { return "i/o timeout" }
func (*timeoutError) Timeout() bool   { return true }
func (*timeoutError) Temporary() bool { return true }

// TestRetryable covers the failures Failure does not build itself: a vendor's own code mapped
// to a reason, and DNS failures that may or may not pass.
func TestRetryable(t *testing.T) {
	dial := &net.OpError{Op: "dial", Net: "tcp", Err: errors.New("connection refused")}
	tests := []struct {
		name string
		err  *connector.Error
		want bool
	}{
		{"429", &connector.Error{Reason: connector.ReasonProviderRateLimited}, true},
		{"dial refused", &connector.Error{Reason: connector.ReasonProviderUnavailable, Err: fmt.Errorf("x: %w", dial)}, true},
		{"proxy connect", &connector.Error{Reason: connector.ReasonProviderUnavailable, Err: &net.OpError{Op: "proxyconnect", Err: errors.New("refused")}}, true},
		{"DNS temporary", &connector.Error{Reason: connector.ReasonProviderUnavailable, Err: &net.DNSError{Err: "server misbehaving", IsTemporary: true}}, true},
		{"DNS timeout", &connector.Error{Reason: connector.ReasonProviderUnavailable, Err: &net.DNSError{Err: "timeout", IsTimeout: true}}, true},
		{"DNS no such host", &connector.Error{Reason: connector.ReasonProviderUnavailable, Err: &net.DNSError{Err: "no such host", IsNotFound: true}}, false},
		{"certificate", &connector.Error{Reason: connector.ReasonProviderUnavailable, Err: &tls.CertificateVerificationError{Err: errors.New("bad")}}, false},
		{"outcome unknown", &connector.Error{Reason: connector.ReasonProviderOutcomeUnknown, Err: &net.OpError{Op: "read", Err: errors.New("reset")}}, false},
		{"timeout", &connector.Error{Reason: connector.ReasonProviderTimeout, Err: context.DeadlineExceeded}, false},
		{"invalid response", &connector.Error{Reason: connector.ReasonProviderInvalidResponse}, false},
		{"queue full", &connector.Error{Reason: connector.ReasonProviderQueueFull}, false},
		{"rejected", &connector.Error{Reason: connector.ReasonProviderRejected}, false},
		{"cancelled", &connector.Error{Reason: connector.ReasonCancelled, Err: context.Canceled}, false},
	}
	for _, tt := range tests {
		if got := Retryable(tt.err); got != tt.want {
			t.Errorf("%s: Retryable = %v, want %v", tt.name, got, tt.want)
		}
	}
}

// TestTransport: over real HTTP, a Transport sends to its BaseURL with its Context, never
// follows a redirect, remembers the answer's status and header, and Close drains and closes a
// body the caller left unread, so the connection is reused.
func TestTransport(t *testing.T) {
	var conns atomic.Int32
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body) // then the server notices the client going away
		switch r.URL.Path {
		case "/redirect":
			w.Header().Set("Location", "/elsewhere")
			w.WriteHeader(http.StatusFound)
		case "/slow":
			select {
			case <-r.Context().Done():
			case <-time.After(10 * time.Second): // a client that ignored its Context
				w.WriteHeader(http.StatusGatewayTimeout)
			}
		default:
			w.Header().Set("Retry-After", "2")
			w.WriteHeader(http.StatusTooManyRequests)
			_, _ = io.WriteString(w, `{"code":20429,"message":"`+strings.Repeat("x", 8<<10)+`"}`)
		}
	}))
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	srv.Start()
	defer srv.Close()
	base := http.DefaultTransport.(*http.Transport).Clone()
	defer base.CloseIdleConnections()
	srvURL, err := url.Parse(srv.URL)
	if err != nil {
		t.Fatal(err)
	}

	// call makes one call to path on the vendor's fixed host, as an SDK would, through a
	// Transport aimed at srv, and leaves the body unread.
	call := func(ctx context.Context, path string) (*Transport, error) {
		tr := &Transport{Base: base, Context: ctx, BaseURL: srvURL}
		req, err := http.NewRequestWithContext(context.Background(), http.MethodPost, "https://api.acme.test"+path, strings.NewReader("a=b"))
		if err != nil {
			t.Fatal(err)
		}
		_, err = tr.Client().Do(req) // the body is left unread, as SDKs do with an error answer
		tr.Close()
		return tr, err
	}

	for range 3 {
		tr, err := call(context.Background(), "/send")
		if err != nil {
			t.Fatal(err)
		}
		if tr.Status != http.StatusTooManyRequests || RetryAfter(tr.Header.Get("Retry-After")) != 2*time.Second {
			t.Errorf("Status %d, Header %v", tr.Status, tr.Header)
		}
	}
	if n := conns.Load(); n != 1 {
		t.Errorf("%d connections for 3 sequential calls whose bodies were left unread, want 1", n)
	}

	tr, err := call(context.Background(), "/redirect")
	if err != nil || tr.Status != http.StatusFound {
		t.Errorf("redirect: status %d, %v; want the 302 itself", tr.Status, err)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	tr, err = call(ctx, "/slow")
	if !errors.Is(err, context.DeadlineExceeded) || tr.Status != 0 {
		t.Errorf("slow answer: status %d, %v; want the Context's deadline to end the call", tr.Status, err)
	}
	if e := acme.Failure(ctx, ctx, tr, err); e.Reason != connector.ReasonProviderTimeout {
		t.Errorf("slow answer: %v, want PROVIDER_TIMEOUT", e)
	}
}
