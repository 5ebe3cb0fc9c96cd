package idemredis_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/sms-connector/sms-connector/connector"
	"github.com/sms-connector/sms-connector/connector/idempotency"
	"github.com/sms-connector/sms-connector/connector/idempotency/idemredis"
)

// vendor is a counting test double of a vendor's connector. It answers with answer (default:
// a receipt numbered by call) after delay; with a gate, each Send first announces itself on
// started and waits for the gate or its context (then CANCELLED).
type vendor struct {
	mu      sync.Mutex
	calls   int
	delay   time.Duration
	answer  func(call int) (*connector.Receipt, error)
	gate    chan struct{}
	started chan struct{}
}

func (v *vendor) Send(ctx context.Context, msg *connector.Message) (*connector.Receipt, error) {
	v.mu.Lock()
	v.calls++
	call := v.calls
	v.mu.Unlock()
	if v.gate != nil {
		v.started <- struct{}{}
		select {
		case <-v.gate:
		case <-ctx.Done():
			return nil, &connector.Error{Reason: connector.ReasonCancelled, Message: "cancelled", Err: ctx.Err()}
		}
	}
	time.Sleep(v.delay)
	if v.answer != nil {
		return v.answer(call)
	}
	return &connector.Receipt{MessageID: fmt.Sprintf("SM%d", call), Status: "queued", To: msg.To, Segments: 1, Encoding: connector.EncodingGSM7}, nil
}

func (v *vendor) ValidateConfig(context.Context, json.RawMessage) ([]connector.Violation, error) {
	return nil, nil
}

func (v *vendor) Metadata(context.Context) (*connector.Metadata, error) {
	return &connector.Metadata{ID: "vendor"}, nil
}

// Calls reports how many sends reached the vendor.
func (v *vendor) Calls() int {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.calls
}

// gated makes v block each Send until the test opens the gate.
func gated(v *vendor) *vendor {
	v.gate, v.started = make(chan struct{}), make(chan struct{}, 16)
	return v
}

// The phone number, key and token of the test messages: none may appear in Redis.
const (
	phone     = "+14155550123"
	idemKey   = "signin-7f3a-plainkey"
	authToken = "secret-auth-token-9d2c"
)

// msg is a sign-in message with idempotency key key.
func msg(key string) *connector.Message {
	return &connector.Message{
		To: phone, UsageType: connector.UsageSignIn, IdempotencyKey: key,
		Config:  json.RawMessage(`{"accountSID":"AC1","authToken":"` + authToken + `"}`),
		Payload: connector.Payload{Code: "123456", Locale: "en"},
	}
}

// storeKind makes the Store of one run of the behaviour table (nil: the memory store), and
// reports how many keys it holds.
type storeKind struct {
	name  string
	store func(t *testing.T) (idempotency.Store, func() int)
}

// kinds are the memory store and a Redis store on a server of the test's own.
var kinds = []storeKind{
	{"memory", func(*testing.T) (idempotency.Store, func() int) { return nil, nil }},
	{"redis", func(t *testing.T) (idempotency.Store, func() int) {
		srv := startRedis(t)
		rdb := srv.Client()
		s, err := idemredis.New(rdb, idemredis.Options{})
		if err != nil {
			t.Fatal(err)
		}
		return s, func() int { return len(srv.Keys(context.Background(), rdb)) }
	}},
}

// newConnector wraps v in an idempotency.Connector over store s, and returns how many keys
// the store holds.
func newConnector(t *testing.T, v connector.SmsConnector, k storeKind) (*idempotency.Connector, func() int) {
	t.Helper()
	s, keys := k.store(t)
	c, err := idempotency.New(v, idempotency.Options{Store: s})
	if err != nil {
		t.Fatal(err)
	}
	if keys == nil {
		keys = c.Len
	}
	return c, keys
}

// TestBehaviourOfBothStores runs the decorator's behaviour over the memory store and the
// Redis store: the answers must be the same.
func TestBehaviourOfBothStores(t *testing.T) {
	for _, k := range kinds {
		t.Run(k.name, func(t *testing.T) {
			t.Run("stored answer", func(t *testing.T) { testStoredAnswer(t, k) })
			t.Run("conflicts", func(t *testing.T) { testConflicts(t, k) })
			t.Run("errors stored or not", func(t *testing.T) { testErrorsStoredOrNot(t, k) })
			t.Run("concurrent duplicates", func(t *testing.T) { testConcurrentDuplicates(t, k) })
			t.Run("first caller gone", func(t *testing.T) { testFirstCallerGone(t, k) })
			t.Run("waiter's deadline", func(t *testing.T) { testWaiterDeadline(t, k) })
			t.Run("no key", func(t *testing.T) { testNoKey(t, k) })
		})
	}
}

func testStoredAnswer(t *testing.T, k storeKind) {
	v := &vendor{}
	c, keys := newConnector(t, v, k)
	ctx := context.Background()
	first, err := c.Send(ctx, msg(idemKey))
	if err != nil {
		t.Fatal(err)
	}
	again, err := c.Send(ctx, msg(idemKey))
	if err != nil || *again != *first || v.Calls() != 1 || keys() != 1 {
		t.Fatalf("later duplicate: %+v, %v, %d sends, %d keys; want %+v, 1 send, 1 key", again, err, v.Calls(), keys(), first)
	}
}

func testConflicts(t *testing.T, k storeKind) {
	v := &vendor{}
	c, _ := newConnector(t, v, k)
	if _, err := c.Send(context.Background(), msg(idemKey)); err != nil {
		t.Fatal(err)
	}
	for _, mutate := range []func(*connector.Message){
		func(m *connector.Message) { m.To = "+14155550124" },
		func(m *connector.Message) { m.Payload.Code = "654321" },
		func(m *connector.Message) { m.UsageType = connector.UsageRegister },
	} {
		m := msg(idemKey)
		mutate(m)
		_, err := c.Send(context.Background(), m)
		var e *connector.Error
		if !errors.As(err, &e) || e.Reason != connector.ReasonInvalidRequest || len(e.Violations) != 1 || e.Violations[0].Field != "idempotency_key" {
			t.Errorf("got %v; want INVALID_REQUEST on idempotency_key", err)
		}
	}
	if v.Calls() != 1 {
		t.Errorf("%d sends, want 1", v.Calls())
	}
}

func testErrorsStoredOrNot(t *testing.T, k storeKind) {
	tests := []struct {
		err    error
		want   error // what a later duplicate gets, when stored
		stored bool
	}{
		{connector.Errorf(connector.ReasonProviderOutcomeUnknown, "5xx"), nil, true},
		{&connector.Error{Reason: connector.ReasonRecipientOptedOut, Message: "STOP", Provider: "twilio", ProviderCode: "21610",
			MoreInfo: "https://www.twilio.com/docs/errors/21610", Violations: []connector.Violation{{Field: "to", Description: "opted out"}}}, nil, true},
		{&connector.Error{Reason: connector.ReasonInvalidConfig, Message: "bad", RetryAfter: 1500 * time.Millisecond}, nil, true},
		{connector.Errorf(connector.ReasonProviderRateLimited, "429"), nil, false},
		{connector.Errorf(connector.ReasonProviderUnavailable, "refused"), nil, false},
		{connector.Errorf(connector.ReasonCancelled, "vendor cancelled"), nil, false},
	}
	for i, tt := range tests {
		v := &vendor{answer: func(call int) (*connector.Receipt, error) {
			if call == 1 {
				return nil, tt.err
			}
			return &connector.Receipt{MessageID: "SM2"}, nil
		}}
		c, _ := newConnector(t, v, k)
		key := fmt.Sprint("k", i)
		if _, err := c.Send(context.Background(), msg(key)); !errors.Is(err, tt.err) {
			t.Fatalf("first send: %v", err)
		}
		r, err := c.Send(context.Background(), msg(key))
		var got *connector.Error
		switch {
		case tt.stored && (v.Calls() != 1 || r != nil || !errors.As(err, &got) || got.Error() != tt.err.Error()):
			t.Errorf("%v: duplicate got %v, %v after %d sends; want the stored error", tt.err, r, err, v.Calls())
		case tt.stored:
			if want := tt.err.(*connector.Error); got.RetryAfter != want.RetryAfter || got.MoreInfo != want.MoreInfo || fmt.Sprint(got.Violations) != fmt.Sprint(want.Violations) {
				t.Errorf("stored %+v, want %+v", got, want)
			}
		case !tt.stored && (v.Calls() != 2 || err != nil || r.MessageID != "SM2"):
			t.Errorf("%v: duplicate got %v, %v after %d sends; want a new send", tt.err, r, err, v.Calls())
		}
	}
}

func testConcurrentDuplicates(t *testing.T, k storeKind) {
	for _, answerErr := range []error{nil, connector.Errorf(connector.ReasonProviderRateLimited, "429")} {
		v := gated(&vendor{})
		if answerErr != nil {
			v.answer = func(int) (*connector.Receipt, error) { return nil, answerErr }
		}
		c, _ := newConnector(t, v, k)
		const n = 20
		errs := make([]error, n)
		receipts := make([]*connector.Receipt, n)
		var wg sync.WaitGroup
		for i := range n {
			wg.Go(func() { receipts[i], errs[i] = c.Send(context.Background(), msg("concurrent")) })
		}
		<-v.started
		time.Sleep(50 * time.Millisecond) // most duplicates arrive while the send is in flight
		close(v.gate)
		wg.Wait()
		for i := range n {
			if answerErr == nil && (errs[i] != nil || receipts[i].MessageID != "SM1") {
				t.Errorf("got %+v, %v; want SM1", receipts[i], errs[i])
			}
			if answerErr != nil && (errs[i] == nil || errs[i].Error() != answerErr.Error()) {
				t.Errorf("got %v; want %v", errs[i], answerErr)
			}
		}
		if v.Calls() != 1 {
			t.Errorf("%d sends, want 1", v.Calls())
		}
	}
}

func testFirstCallerGone(t *testing.T, k storeKind) {
	v := gated(&vendor{})
	c, keys := newConnector(t, v, k)
	ctx, cancel := context.WithCancel(context.Background())
	first := make(chan error, 1)
	go func() {
		_, err := c.Send(ctx, msg(idemKey))
		first <- err
	}()
	<-v.started
	cancel()
	if err := <-first; connector.ReasonOf(err) != connector.ReasonCancelled {
		t.Errorf("first caller: %v, want CANCELLED", err)
	}
	if n := keys(); n != 0 {
		t.Errorf("%d keys after the first caller went away, want 0 (the key freed)", n)
	}
	close(v.gate)
	if r, err := c.Send(context.Background(), msg(idemKey)); err != nil || r.MessageID != "SM2" {
		t.Errorf("retry: %+v, %v; want a new send", r, err)
	}
}

func testWaiterDeadline(t *testing.T, k storeKind) {
	v := gated(&vendor{})
	c, _ := newConnector(t, v, k)
	first := make(chan error, 1)
	go func() {
		_, err := c.Send(context.Background(), msg(idemKey))
		first <- err
	}()
	<-v.started
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Millisecond)
	_, err := c.Send(ctx, msg(idemKey))
	cancel()
	if connector.ReasonOf(err) != connector.ReasonProviderTimeout || !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("waiter: %v, want PROVIDER_TIMEOUT wrapping the deadline", err)
	}
	close(v.gate)
	if err := <-first; err != nil || v.Calls() != 1 {
		t.Errorf("first send: %v, %d sends", err, v.Calls())
	}
}

func testNoKey(t *testing.T, k storeKind) {
	v := &vendor{}
	c, keys := newConnector(t, v, k)
	for range 3 {
		if _, err := c.Send(context.Background(), msg("")); err != nil {
			t.Fatal(err)
		}
	}
	if v.Calls() != 3 || keys() != 0 {
		t.Errorf("no key: %d sends, %d keys; want 3, 0", v.Calls(), keys())
	}
}
