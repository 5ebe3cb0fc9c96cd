package idempotency

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/sms-connector/sms-connector/connector"
	"github.com/sms-connector/sms-connector/internal/testutil"
)

// TestMain fails the package's tests if any goroutine outlives them.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// fakeConnector answers sends with answer (default: a receipt numbered by call). With a gate,
// each Send first announces itself on started and waits for the gate or its context.
type fakeConnector struct {
	mu      sync.Mutex
	calls   int
	answer  func(call int, msg *connector.Message) (*connector.Receipt, error)
	gate    chan struct{}
	started chan struct{}
}

func (f *fakeConnector) Send(ctx context.Context, msg *connector.Message) (*connector.Receipt, error) {
	f.mu.Lock()
	f.calls++
	call, gate, answer := f.calls, f.gate, f.answer
	f.mu.Unlock()
	if gate != nil {
		f.started <- struct{}{}
		select {
		case <-gate:
		case <-ctx.Done():
			return nil, &connector.Error{Reason: connector.ReasonCancelled, Message: "cancelled", Err: ctx.Err()}
		}
	}
	if answer != nil {
		return answer(call, msg)
	}
	return &connector.Receipt{MessageID: fmt.Sprintf("SM%d", call), To: msg.To, Segments: 1}, nil
}

func (f *fakeConnector) ValidateConfig(context.Context, json.RawMessage) ([]connector.Violation, error) {
	return nil, errors.New("validate: from next")
}

func (f *fakeConnector) Metadata(context.Context) (*connector.Metadata, error) {
	return &connector.Metadata{ID: "fake"}, nil
}

// Calls reports how many sends reached the connector.
func (f *fakeConnector) Calls() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls
}

// gated makes f block each Send until the test opens the gate.
func gated(f *fakeConnector) *fakeConnector {
	f.gate, f.started = make(chan struct{}), make(chan struct{}, 16)
	return f
}

// newConnector wraps next with a fake clock.
func newConnector(t *testing.T, next connector.SmsConnector, o Options) (*Connector, *testutil.Clock) {
	t.Helper()
	clk := testutil.NewClock()
	o.Now = clk.Now
	c, err := New(next, o)
	if err != nil {
		t.Fatal(err)
	}
	return c, clk
}

// tenantA and tenantB are two tenants' configurations.
var (
	tenantA = json.RawMessage(`{"accountSID": "AC1", "authToken": "tokenA"}`)
	tenantB = json.RawMessage(`{"accountSID": "AC2", "authToken": "tokenB"}`)
)

// keyed is a message with idempotency key key for tenant cfg.
func keyed(key string, cfg json.RawMessage) *connector.Message {
	return &connector.Message{
		To: "+14155550123", UsageType: connector.UsageSignIn, Config: cfg, IdempotencyKey: key,
		Payload: connector.Payload{Code: "123456", Locale: "en", Variables: map[string]any{"app": map[string]any{"name": "Acme"}}},
	}
}

func TestWindow(t *testing.T) {
	next := &fakeConnector{}
	c, clk := newConnector(t, next, Options{})
	ctx := context.Background()
	first, err := c.Send(ctx, keyed("k1", tenantA))
	if err != nil {
		t.Fatal(err)
	}
	clk.Advance(DefaultWindow - time.Second)
	again, err := c.Send(ctx, keyed("k1", tenantA))
	if err != nil || *again != *first || next.Calls() != 1 {
		t.Fatalf("duplicate within the window: %+v, %v, %d sends", again, err, next.Calls())
	}
	if again == first {
		t.Errorf("duplicates share one receipt value; each must get a copy")
	}
	clk.Advance(time.Second)
	later, err := c.Send(ctx, keyed("k1", tenantA))
	if err != nil || later.MessageID == first.MessageID || next.Calls() != 2 {
		t.Fatalf("after the window: %+v, %v, %d sends; want a new send", later, err, next.Calls())
	}
	if c.Len() != 1 {
		t.Errorf("%d keys remembered, want 1", c.Len())
	}
}

func TestScopeAndConflicts(t *testing.T) {
	tests := []struct {
		name     string
		mutate   func(*connector.Message)
		conflict bool
		newSend  bool
	}{
		{"same request", func(*connector.Message) {}, false, false},
		{"formatted recipient", func(m *connector.Message) { m.To = "+1 (415) 555-0123" }, false, false},
		{"another client IP", func(m *connector.Message) { m.ClientIP = "192.0.2.9" }, false, false},
		{"config with other spacing and key order", func(m *connector.Message) {
			m.Config = json.RawMessage(` { "authToken":"tokenA","accountSID":"AC1" } `)
		}, false, false},
		{"another tenant", func(m *connector.Message) { m.Config = tenantB }, false, true},
		{"another key", func(m *connector.Message) { m.IdempotencyKey = "k2" }, false, true},
		{"another recipient", func(m *connector.Message) { m.To = "+14155550124" }, true, false},
		{"another usage type", func(m *connector.Message) { m.UsageType = connector.UsageRegister }, true, false},
		{"another code", func(m *connector.Message) { m.Payload.Code = "654321" }, true, false},
		{"another locale", func(m *connector.Message) { m.Payload.Locale = "fr" }, true, false},
		{"another variable", func(m *connector.Message) {
			m.Payload.Variables = map[string]any{"app": map[string]any{"name": "Evil"}}
		}, true, false},
		{"variables dropped", func(m *connector.Message) { m.Payload.Variables = nil }, true, false},
		{"a link added", func(m *connector.Message) { m.Payload.Link = "https://example.com/i" }, true, false},
		{"a preference list added", func(m *connector.Message) { m.Payload.Locales = []string{"fr"} }, true, false},
		{"a locale moved into the list", func(m *connector.Message) { m.Payload.Locale, m.Payload.Locales = "", []string{"en"} }, true, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			next := &fakeConnector{}
			c, _ := newConnector(t, next, Options{})
			if _, err := c.Send(context.Background(), keyed("k1", tenantA)); err != nil {
				t.Fatal(err)
			}
			m := keyed("k1", tenantA)
			tt.mutate(m)
			r, err := c.Send(context.Background(), m)
			switch {
			case tt.conflict:
				var e *connector.Error
				if !errors.As(err, &e) || e.Reason != connector.ReasonInvalidRequest || len(e.Violations) != 1 || e.Violations[0].Field != "idempotency_key" {
					t.Fatalf("got %+v, %v; want INVALID_REQUEST on idempotency_key", r, err)
				}
				if next.Calls() != 1 {
					t.Errorf("the conflicting request was sent")
				}
			case err != nil:
				t.Fatal(err)
			case tt.newSend != (next.Calls() == 2):
				t.Errorf("%d sends; new send wanted: %v", next.Calls(), tt.newSend)
			}
		})
	}
}

// TestErrorsStoredOrNot: which errors of the first send later duplicates get, and which let
// them try again.
func TestErrorsStoredOrNot(t *testing.T) {
	tests := []struct {
		err    error
		stored bool
	}{
		{connector.Errorf(connector.ReasonProviderOutcomeUnknown, "5xx"), true},
		{connector.Errorf(connector.ReasonProviderTimeout, "attempt timeout"), true},
		{connector.Errorf(connector.ReasonProviderInvalidResponse, "no sid"), true},
		{connector.Errorf(connector.ReasonInvalidConfig, "bad"), true},
		{connector.Errorf(connector.ReasonTemplateNotFound, "none"), true},
		{connector.Errorf(connector.ReasonRecipientOptedOut, "STOP"), true},
		{connector.Errorf(connector.ReasonCountryNotPermitted, "policy"), true},
		{connector.Errorf(connector.ReasonInternal, "bug"), true},
		{errors.New("a plain error"), true},
		{connector.Errorf(connector.ReasonRateLimited, "guard"), false},
		{connector.Errorf(connector.ReasonProviderRateLimited, "429"), false},
		{connector.Errorf(connector.ReasonProviderUnavailable, "refused"), false},
		{connector.Errorf(connector.ReasonProviderQueueFull, "queue"), false},
		{connector.Errorf(connector.ReasonOverloaded, "concurrency limit"), false},
		{connector.Errorf(connector.ReasonStoreUnavailable, "the guard's store is down"), false},
		{connector.Errorf(connector.ReasonCancelled, "vendor cancelled"), false},
	}
	for _, tt := range tests {
		t.Run(tt.err.Error(), func(t *testing.T) {
			next := &fakeConnector{answer: func(call int, msg *connector.Message) (*connector.Receipt, error) {
				if call == 1 {
					return nil, tt.err
				}
				return &connector.Receipt{MessageID: "SM2"}, nil
			}}
			c, _ := newConnector(t, next, Options{})
			if _, err := c.Send(context.Background(), keyed("k", tenantA)); !errors.Is(err, tt.err) {
				t.Fatalf("first send: %v", err)
			}
			r, err := c.Send(context.Background(), keyed("k", tenantA))
			if tt.stored {
				if next.Calls() != 1 || err == nil || err.Error() != tt.err.Error() || r != nil {
					t.Errorf("duplicate: %v, %v after %d sends; want the stored error", r, err, next.Calls())
				}
				return
			}
			if next.Calls() != 2 || err != nil || r.MessageID != "SM2" {
				t.Errorf("duplicate: %v, %v after %d sends; want a new send", r, err, next.Calls())
			}
		})
	}
}

// TestConcurrentDuplicatesShareAnswer: duplicates that arrive while the first send is in flight
// wait for it and get its answer, also an answer that is not stored.
func TestConcurrentDuplicatesShareAnswer(t *testing.T) {
	for _, tt := range []struct {
		name string
		err  error
	}{
		{"receipt", nil},
		{"stored error", connector.Errorf(connector.ReasonProviderOutcomeUnknown, "5xx")},
		{"error not stored", connector.Errorf(connector.ReasonProviderRateLimited, "429")},
	} {
		t.Run(tt.name, func(t *testing.T) {
			next := gated(&fakeConnector{})
			if tt.err != nil {
				next.answer = func(int, *connector.Message) (*connector.Receipt, error) { return nil, tt.err }
			}
			c, _ := newConnector(t, next, Options{})
			const n = 20
			type result struct {
				r   *connector.Receipt
				err error
			}
			results := make(chan result, n)
			var wg sync.WaitGroup
			for range n {
				wg.Go(func() {
					r, err := c.Send(context.Background(), keyed("k", tenantA))
					results <- result{r, err}
				})
			}
			<-next.started
			waitFor(t, func() bool { return joined(c, keyed("k", tenantA)) == n-1 })
			close(next.gate)
			wg.Wait()
			close(results)
			for res := range results {
				if tt.err == nil && (res.err != nil || res.r.MessageID != "SM1") {
					t.Errorf("got %+v, %v; want receipt SM1", res.r, res.err)
				}
				if tt.err != nil && (res.r != nil || res.err == nil || res.err.Error() != tt.err.Error()) {
					t.Errorf("got %+v, %v; want %v", res.r, res.err, tt.err)
				}
			}
			if next.Calls() != 1 {
				t.Errorf("%d sends, want 1", next.Calls())
			}
		})
	}
}

// joined reports how many duplicates found the entry of msg's key.
func joined(c *Connector, msg *connector.Message) int {
	c.mem.mu.Lock()
	defer c.mem.mu.Unlock()
	if e := c.mem.entries[scopedKey(msg)]; e != nil {
		return e.joined
	}
	return 0
}

// waitFor polls cond (for a state another goroutine reaches) for up to 10 s.
func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	for range 2000 {
		if cond() {
			return
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatal("condition not reached")
}

// TestFirstCallerGoneLetsOthersRetry: when the first caller's context ends, its answer is not
// stored; a waiting duplicate sends instead, and gets a real answer.
func TestFirstCallerGoneLetsOthersRetry(t *testing.T) {
	next := gated(&fakeConnector{})
	c, _ := newConnector(t, next, Options{})
	ctx1, cancel1 := context.WithCancel(context.Background())
	defer cancel1()
	first := make(chan error, 1)
	go func() {
		_, err := c.Send(ctx1, keyed("k", tenantA))
		first <- err
	}()
	<-next.started
	second := make(chan *connector.Receipt, 1)
	go func() {
		r, err := c.Send(context.Background(), keyed("k", tenantA))
		if err != nil {
			t.Error(err)
		}
		second <- r
	}()
	waitFor(t, func() bool { return joined(c, keyed("k", tenantA)) == 1 })
	cancel1()
	if err := <-first; connector.ReasonOf(err) != connector.ReasonCancelled {
		t.Errorf("first caller: %v, want CANCELLED", err)
	}
	<-next.started // the duplicate sends
	close(next.gate)
	if r := <-second; r == nil || r.MessageID != "SM2" {
		t.Errorf("duplicate: %+v, want the receipt of its own send", r)
	}
	// The duplicate's answer is stored.
	if r, err := c.Send(context.Background(), keyed("k", tenantA)); err != nil || r.MessageID != "SM2" || next.Calls() != 2 {
		t.Errorf("later duplicate: %+v, %v, %d sends", r, err, next.Calls())
	}
}

// TestWaiterHonoursItsContext: a duplicate stops waiting when its own context ends, and the
// first send is not disturbed.
func TestWaiterHonoursItsContext(t *testing.T) {
	next := gated(&fakeConnector{})
	c, _ := newConnector(t, next, Options{})
	first := make(chan error, 1)
	go func() {
		_, err := c.Send(context.Background(), keyed("k", tenantA))
		first <- err
	}()
	<-next.started
	for _, tt := range []struct {
		name   string
		ctx    func() (context.Context, context.CancelFunc)
		reason connector.Reason
		is     error
	}{
		{"cancelled", func() (context.Context, context.CancelFunc) {
			ctx, cancel := context.WithCancel(context.Background())
			cancel()
			return ctx, cancel
		}, connector.ReasonCancelled, context.Canceled},
		{"deadline", func() (context.Context, context.CancelFunc) {
			return context.WithTimeout(context.Background(), time.Millisecond)
		}, connector.ReasonProviderTimeout, context.DeadlineExceeded},
	} {
		ctx, cancel := tt.ctx()
		_, err := c.Send(ctx, keyed("k", tenantA))
		cancel()
		if connector.ReasonOf(err) != tt.reason || !errors.Is(err, tt.is) {
			t.Errorf("%s: %v, want %s wrapping %v", tt.name, err, tt.reason, tt.is)
		}
	}
	close(next.gate)
	if err := <-first; err != nil {
		t.Errorf("first send: %v", err)
	}
	if next.Calls() != 1 {
		t.Errorf("%d sends, want 1", next.Calls())
	}
}

func TestPanicReleasesWaiters(t *testing.T) {
	next := gated(&fakeConnector{})
	calls := 0
	next.answer = func(int, *connector.Message) (*connector.Receipt, error) {
		calls++
		if calls == 1 {
			panic("vendor bug")
		}
		return &connector.Receipt{MessageID: "SM2"}, nil
	}
	c, _ := newConnector(t, next, Options{})
	panicked := make(chan any, 1)
	go func() {
		defer func() { panicked <- recover() }()
		_, _ = c.Send(context.Background(), keyed("k", tenantA))
	}()
	<-next.started
	second := make(chan error, 1)
	go func() {
		_, err := c.Send(context.Background(), keyed("k", tenantA))
		second <- err
	}()
	next.gate <- struct{}{} // the first send panics
	if p := <-panicked; p != "vendor bug" {
		t.Errorf("recovered %v", p)
	}
	<-next.started // the duplicate tries again
	close(next.gate)
	if err := <-second; err != nil {
		t.Errorf("duplicate after a panic: %v", err)
	}
}

func TestFullOfSendsInFlight(t *testing.T) {
	next := gated(&fakeConnector{})
	c, _ := newConnector(t, next, Options{MaxEntries: 2})
	var wg sync.WaitGroup
	for i := range 2 {
		wg.Go(func() { _, _ = c.Send(context.Background(), keyed(fmt.Sprint("k", i), tenantA)) })
		<-next.started
	}
	_, err := c.Send(context.Background(), keyed("k9", tenantA))
	var e *connector.Error
	if !errors.As(err, &e) || e.Reason != connector.ReasonRateLimited || e.RetryAfter <= 0 {
		t.Errorf("got %v, want RATE_LIMITED", err)
	}
	close(next.gate)
	wg.Wait()
}

func TestPassThrough(t *testing.T) {
	next := &fakeConnector{}
	c, _ := newConnector(t, next, Options{})
	for range 3 {
		if _, err := c.Send(context.Background(), keyed("", tenantA)); err != nil {
			t.Fatal(err)
		}
	}
	if next.Calls() != 3 || c.Len() != 0 {
		t.Errorf("no key: %d sends, %d keys; want 3, 0", next.Calls(), c.Len())
	}
	if _, err := c.ValidateConfig(context.Background(), nil); err == nil || err.Error() != "validate: from next" {
		t.Errorf("ValidateConfig: %v", err)
	}
	if md, err := c.Metadata(context.Background()); err != nil || md.ID != "fake" {
		t.Errorf("Metadata: %v, %v", md, err)
	}
	for _, o := range []Options{{Window: -1}, {MaxEntries: -1}} {
		if _, err := New(next, o); err == nil {
			t.Errorf("New(%+v) succeeded", o)
		}
	}
	if _, err := New(nil, Options{}); err == nil {
		t.Error("New(nil) succeeded")
	}
	d, err := New(next, Options{})
	if err != nil || d.window != DefaultWindow || d.mem.max != DefaultMaxEntries || d.mem.now == nil {
		t.Errorf("defaults: %+v, %v", d, err)
	}
}

func TestKeysAreHashes(t *testing.T) {
	a, b := keyed("k", tenantA), keyed("k", tenantB)
	if scopedKey(a) == scopedKey(b) {
		t.Error("two tenants share a key")
	}
	// A tenant cannot forge another's scope by moving text between config and key.
	x := keyed("1\"}k", json.RawMessage(`{"a":"`))
	y := keyed("k", json.RawMessage(`{"a":"1"}`))
	if scopedKey(x) == scopedKey(y) {
		t.Error("config and key run into each other")
	}
	if canonical := string(canonicalJSON(json.RawMessage(" {\"b\": 1.50, \"a\": [true, null]} "))); canonical != `{"a":[true,null],"b":1.50}` {
		t.Errorf("canonical JSON %s", canonical)
	}
	if raw := string(canonicalJSON(json.RawMessage("not json"))); raw != "not json" {
		t.Errorf("non-JSON config %q", raw)
	}
}
