package twilio

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sms-connector/sms-connector/connector"
	"github.com/sms-connector/sms-connector/connector/twilio/twiliotest"
)

// waits records the retry waits of a Connector instead of sleeping them.
type waits struct {
	mu sync.Mutex
	ds []time.Duration
}

// sleep is a Connector.sleep that records d and returns at once (ctx's error if it has ended).
func (w *waits) sleep(ctx context.Context, d time.Duration) error {
	w.mu.Lock()
	w.ds = append(w.ds, d)
	w.mu.Unlock()
	return ctx.Err()
}

// all returns the recorded waits.
func (w *waits) all() []time.Duration {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]time.Duration(nil), w.ds...)
}

// retryEmulator is emulatorWith whose Connector records its retry waits in the returned waits.
func retryEmulator(t *testing.T, o Options) (*twiliotest.Server, *Connector, *waits) {
	t.Helper()
	srv, c := emulatorWith(t, o)
	w := &waits{}
	c.sleep = w.sleep
	return srv, c, w
}

var (
	fault429       = twiliotest.Fault{Kind: twiliotest.FaultTooManyRequests}
	fault429HTML   = twiliotest.Fault{Kind: twiliotest.FaultServerErrorHTML, Status: http.StatusTooManyRequests}
	fault5xxHTML   = twiliotest.Fault{Kind: twiliotest.FaultServerErrorHTML}
	fault5xxJSON   = twiliotest.Fault{Kind: twiliotest.FaultServerErrorJSON}
	fault503JSON   = twiliotest.Fault{Kind: twiliotest.FaultServerErrorJSON, Status: http.StatusServiceUnavailable}
	faultReset     = twiliotest.Fault{Kind: twiliotest.FaultConnectionReset}
	faultRedirect  = twiliotest.Fault{Kind: twiliotest.FaultRedirect}
	fault429After2 = twiliotest.Fault{Kind: twiliotest.FaultTooManyRequests, RetryAfter: 2 * time.Second}
)

// TestRetry is the fault matrix of the retry policy: what is retried, how often, and what the
// caller gets in the end.
func TestRetry(t *testing.T) {
	tests := []struct {
		name        string
		maxAttempts int // Options.MaxAttempts
		fault       twiliotest.Fault
		times       int // how many requests the fault answers; -1: all
		wantReason  connector.Reason
		wantReqs    int
		wantWaits   int
		wantRetry   time.Duration // RetryAfter of the error
	}{
		{"429 twice then success", 0, fault429, 2, "", 3, 2, 0},
		{"429 HTML once then success", 0, fault429HTML, 1, "", 2, 1, 0},
		{"429 storm, default attempts", 0, fault429, -1, connector.ReasonProviderRateLimited, 3, 2, DefaultRetryAfter},
		{"429 storm, 5 attempts", 5, fault429, -1, connector.ReasonProviderRateLimited, 5, 4, DefaultRetryAfter},
		{"429 storm, retries disabled", 1, fault429, -1, connector.ReasonProviderRateLimited, 1, 0, DefaultRetryAfter},
		{"429 storm with Retry-After", 0, fault429After2, -1, connector.ReasonProviderRateLimited, 3, 2, 2 * time.Second},
		{"5xx HTML is not retried", 0, fault5xxHTML, -1, connector.ReasonProviderOutcomeUnknown, 1, 0, 0},
		{"5xx JSON is not retried", 0, fault5xxJSON, -1, connector.ReasonProviderOutcomeUnknown, 1, 0, 0},
		{"503 JSON is not retried", 0, fault503JSON, -1, connector.ReasonProviderOutcomeUnknown, 1, 0, 0},
		{"reset after write is not retried", 0, faultReset, -1, connector.ReasonProviderOutcomeUnknown, 1, 0, 0},
		{"redirect is not retried", 0, faultRedirect, -1, connector.ReasonProviderInvalidResponse, 1, 0, 0},
		{"5xx once is not retried", 0, fault5xxJSON, 1, connector.ReasonProviderOutcomeUnknown, 1, 0, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			srv, c, w := retryEmulator(t, Options{MaxAttempts: tt.maxAttempts})
			srv.InjectFault(tt.fault, tt.times)
			r, err := c.Send(context.Background(), message(emuConfig(t)))
			checkNoSecrets(t, err)
			if n := srv.Requests(); n != tt.wantReqs {
				t.Errorf("emulator saw %d requests, want %d", n, tt.wantReqs)
			}
			if n := len(w.all()); n != tt.wantWaits {
				t.Errorf("%d retry waits, want %d", n, tt.wantWaits)
			}
			if tt.wantReason == "" {
				if err != nil {
					t.Fatalf("Send: %v", err)
				}
				if msgs := srv.Messages(); len(msgs) != 1 || msgs[0].Sid != r.MessageID {
					t.Errorf("emulator messages %+v, receipt %+v", msgs, r)
				}
				return
			}
			e := asError(t, err)
			if e.Reason != tt.wantReason || e.RetryAfter != tt.wantRetry {
				t.Errorf("got %s (RetryAfter %v), want %s (RetryAfter %v): %v", e.Reason, e.RetryAfter, tt.wantReason, tt.wantRetry, err)
			}
			if tt.wantReqs > 1 && !strings.Contains(e.Message, fmt.Sprintf("after %d attempts", tt.wantReqs)) {
				t.Errorf("Message %q does not say how many attempts were made", e.Message)
			}
			if len(srv.Messages()) != 0 {
				t.Errorf("emulator recorded a message")
			}
		})
	}
}

// TestRetryHonoursRetryAfter: the wait before a retry is at least Twilio's Retry-After, and a
// Retry-After the caller's deadline cannot accommodate is returned at once, without a wait.
func TestRetryHonoursRetryAfter(t *testing.T) {
	t.Run("waits Retry-After", func(t *testing.T) {
		srv, c, w := retryEmulator(t, Options{})
		srv.InjectFault(fault429After2, 1)
		if _, err := c.Send(context.Background(), message(emuConfig(t))); err != nil {
			t.Fatal(err)
		}
		if ds := w.all(); len(ds) != 1 || ds[0] < 2*time.Second {
			t.Errorf("waits %v, want one of at least 2s", ds)
		}
		if n := srv.Requests(); n != 2 {
			t.Errorf("emulator saw %d requests, want 2", n)
		}
	})
	tests := []struct {
		name       string
		retryAfter time.Duration
		deadline   time.Duration // 0: none
	}{
		{"Retry-After past the deadline", 30 * time.Second, 5 * time.Second},
		{"Retry-After longer than the connector waits", time.Minute, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv, c, w := retryEmulator(t, Options{MaxAttempts: 5})
			srv.InjectFault(twiliotest.Fault{Kind: twiliotest.FaultTooManyRequests, RetryAfter: tt.retryAfter}, -1)
			ctx := context.Background()
			if tt.deadline > 0 {
				var cancel context.CancelFunc
				ctx, cancel = context.WithTimeout(ctx, tt.deadline)
				defer cancel()
			}
			_, err := c.Send(ctx, message(emuConfig(t)))
			e := asError(t, err)
			if e.Reason != connector.ReasonProviderRateLimited || e.RetryAfter != tt.retryAfter {
				t.Errorf("got %s (RetryAfter %v), want PROVIDER_RATE_LIMITED (RetryAfter %v): %v", e.Reason, e.RetryAfter, tt.retryAfter, err)
			}
			if !strings.Contains(e.Message, "not retried") {
				t.Errorf("Message %q does not say why it was not retried", e.Message)
			}
			if n := srv.Requests(); n != 1 {
				t.Errorf("emulator saw %d requests, want 1", n)
			}
			if ds := w.all(); len(ds) != 0 {
				t.Errorf("waited %v", ds)
			}
		})
	}
}

// TestRetryWaitHonoursContext: a Send waiting to retry returns when its context is cancelled,
// with CANCELLED, having sent nothing. It waits for real (the emulator's Retry-After, 5 s), so a
// wait that ignored the context would show as a slow test or a test timeout.
func TestRetryWaitHonoursContext(t *testing.T) {
	srv, c := emulatorWith(t, Options{})
	waiting := make(chan struct{})
	c.sleep = func(ctx context.Context, d time.Duration) error {
		close(waiting) // one wait only: the test cancels it
		return sleepContext(ctx, d)
	}
	srv.InjectFault(twiliotest.Fault{Kind: twiliotest.FaultTooManyRequests, RetryAfter: 5 * time.Second}, -1)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	errc := make(chan error, 1)
	go func() {
		_, err := c.Send(ctx, message(emuConfig(t)))
		errc <- err
	}()
	<-waiting // the first attempt was answered 429; the Send waits to retry
	cancel()
	err := <-errc
	if e := asError(t, err); e.Reason != connector.ReasonCancelled || e.ProviderCode != "" {
		t.Errorf("got %v, want CANCELLED without a provider code", err)
	}
	if !errors.Is(err, context.Canceled) {
		t.Errorf("%v does not wrap context.Canceled", err)
	}
	if n := srv.Requests(); n != 1 {
		t.Errorf("emulator saw %d requests, want 1", n)
	}
}

// TestRetryConnectionRefused: a refused connection never reached Twilio, so it is retried, and
// after MaxAttempts dials Send gives up with PROVIDER_UNAVAILABLE, whose RetryAfter says the
// caller may try again (nothing was sent).
func TestRetryConnectionRefused(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	for _, attempts := range []int{1, 3, 4} {
		t.Run(fmt.Sprint(attempts), func(t *testing.T) {
			var dials atomic.Int32
			tr := newDefaultTransport()
			d := &net.Dialer{}
			tr.DialContext = func(ctx context.Context, network, a string) (net.Conn, error) {
				dials.Add(1)
				return d.DialContext(ctx, network, a)
			}
			t.Cleanup(tr.CloseIdleConnections)
			c, err := New(Options{APIURL: "http://" + addr, Transport: tr, MaxAttempts: attempts})
			if err != nil {
				t.Fatal(err)
			}
			w := &waits{}
			c.sleep = w.sleep
			_, err = c.Send(context.Background(), message(emuConfig(t)))
			checkNoSecrets(t, err)
			if e := asError(t, err); e.Reason != connector.ReasonProviderUnavailable || e.RetryAfter != DefaultRetryAfter {
				t.Errorf("got %v (RetryAfter %v), want PROVIDER_UNAVAILABLE with RetryAfter %v", err, e.RetryAfter, DefaultRetryAfter)
			}
			if n := int(dials.Load()); n != attempts {
				t.Errorf("%d dials, want %d", n, attempts)
			}
			if n := len(w.all()); n != attempts-1 {
				t.Errorf("%d waits, want %d", n, attempts-1)
			}
		})
	}
}

// TestRetryDeadlineCountsTheAttempt: a retry needs the wait and then another attempt; the last
// attempt took 400 ms, so after a 429 asking for 1 s the 1.2 s left of a 1.6 s deadline cannot
// hold both. The Send stops after one request, with Twilio's answer, rather than waiting and
// running into the deadline.
func TestRetryDeadlineCountsTheAttempt(t *testing.T) {
	srv, c, w := retryEmulator(t, Options{})
	srv.SetLatency(400 * time.Millisecond)
	srv.InjectFault(twiliotest.Fault{Kind: twiliotest.FaultTooManyRequests, RetryAfter: time.Second}, -1)
	ctx, cancel := context.WithTimeout(context.Background(), 1600*time.Millisecond)
	defer cancel()
	_, err := c.Send(ctx, message(emuConfig(t)))
	e := asError(t, err)
	if e.Reason != connector.ReasonProviderRateLimited || e.RetryAfter != time.Second {
		t.Errorf("got %s (RetryAfter %v), want PROVIDER_RATE_LIMITED (RetryAfter 1s): %v", e.Reason, e.RetryAfter, err)
	}
	if !strings.Contains(e.Message, "not retried") {
		t.Errorf("Message %q does not say why it was not retried", e.Message)
	}
	if n := srv.Requests(); n != 1 {
		t.Errorf("emulator saw %d requests, want 1", n)
	}
	if ds := w.all(); len(ds) != 0 {
		t.Errorf("waited %v", ds)
	}
}

// TestBackoff checks the ceilings of exponential backoff and that the wait is drawn below them.
func TestBackoff(t *testing.T) {
	c, err := New(Options{})
	if err != nil {
		t.Fatal(err)
	}
	c.backoffBase, c.backoffMax = 100*time.Millisecond, time.Second
	tests := []struct {
		retry int
		want  time.Duration // ceiling
	}{
		{1, 100 * time.Millisecond},
		{2, 200 * time.Millisecond},
		{3, 400 * time.Millisecond},
		{4, 800 * time.Millisecond},
		{5, time.Second},
		{40, time.Second},
		{100, time.Second},
	}
	for _, tt := range tests {
		c.randN = func(n int64) int64 { return n - 1 } // the largest draw
		if got := c.backoff(tt.retry); got != tt.want {
			t.Errorf("retry %d: largest wait %v, want %v", tt.retry, got, tt.want)
		}
		c.randN = func(int64) int64 { return 0 } // the smallest
		if got := c.backoff(tt.retry); got != 0 {
			t.Errorf("retry %d: smallest wait %v, want 0", tt.retry, got)
		}
	}
}
