package guardredis

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"go.uber.org/goleak"

	"github.com/sms-connector/sms-connector/connector"
	"github.com/sms-connector/sms-connector/connector/guard"
	"github.com/sms-connector/sms-connector/internal/redisconn"
	"github.com/sms-connector/sms-connector/internal/testutil/redistest"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// open returns a Store on a client of srv opened as the binary opens it.
func open(t *testing.T, srv *redistest.Server, o Options) *Store {
	t.Helper()
	c, err := redisconn.Open(context.Background(), redisconn.Options{URL: srv.URL(), PasswordFile: srv.PasswordFile, CAFile: srv.CAFile})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	s, err := New(c, o)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestWindowExactUnderConcurrency: many goroutines racing for one window get exactly its
// limit, and every refusal says when a slot frees (within the window).
func TestWindowExactUnderConcurrency(t *testing.T) {
	srv := redistest.Start(t)
	s := open(t, srv, Options{})
	const max = 10
	w := []guard.Window{{Key: "rcpt/1h/10/abc", Max: max, Span: time.Hour}}
	var (
		wg      sync.WaitGroup
		mu      sync.Mutex
		granted []guard.Reservation
	)
	for range 64 {
		wg.Go(func() {
			for range 4 {
				r, ref, err := s.Reserve(context.Background(), w)
				if err != nil {
					t.Error(err)
					return
				}
				if ref.Refused() {
					if ref.Window != 0 || ref.Breaker || ref.RetryAfter > time.Hour {
						t.Errorf("refusal %+v", ref)
					}
					continue
				}
				mu.Lock()
				granted = append(granted, r)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if len(granted) != max {
		t.Fatalf("%d reservations granted, want exactly %d", len(granted), max)
	}
	ids := map[string]bool{}
	for _, r := range granted {
		ids[r.ID] = true
	}
	if len(ids) != max {
		t.Errorf("%d distinct ids among %d reservations", len(ids), max)
	}
	if n := srv.Client().ZCard(context.Background(), s.Key(w[0].Key)).Val(); n != max {
		t.Errorf("ZCARD %d, want %d", n, max)
	}
	// Release gives one slot back, once.
	if err := s.Release(context.Background(), granted[0]); err != nil {
		t.Fatal(err)
	}
	if err := s.Release(context.Background(), granted[0]); err != nil {
		t.Fatal(err)
	}
	for i, want := range []bool{true, false} {
		_, ref, err := s.Reserve(context.Background(), w)
		if err != nil || ref.Refused() == want {
			t.Errorf("reserve %d after one release: %+v, %v; want granted %v", i, ref, err, want)
		}
	}
}

// TestAllOrNone: a send refused by one window takes no slot of the others, and a refusal
// names the first full window.
func TestAllOrNone(t *testing.T) {
	srv := redistest.Start(t)
	s := open(t, srv, Options{})
	ctx := context.Background()
	ws := []guard.Window{{Key: "a", Max: 5, Span: time.Minute}, {Key: "b", Max: 1, Span: time.Hour}, {Key: "c", Max: 5, Span: time.Minute}}
	if _, ref, err := s.Reserve(ctx, ws); err != nil || ref.Refused() {
		t.Fatalf("first: %+v, %v", ref, err)
	}
	_, ref, err := s.Reserve(ctx, ws)
	if err != nil || ref.Window != 1 || ref.Breaker || ref.RetryAfter <= 59*time.Minute || ref.RetryAfter > time.Hour {
		t.Fatalf("second: %+v, %v; want window 1 refused for about an hour", ref, err)
	}
	c := srv.Client()
	for _, k := range []string{"a", "c"} {
		if n := c.ZCard(ctx, s.Key(k)).Val(); n != 1 {
			t.Errorf("window %s holds %d slots after a refused send, want 1", k, n)
		}
	}
}

// TestBreakerWindow: a full breaker window trips the breaker for one span; while it is open
// the window is refused first, whatever the others say.
func TestBreakerWindow(t *testing.T) {
	srv := redistest.Start(t)
	s := open(t, srv, Options{})
	ctx := context.Background()
	global := guard.Window{Key: "global/1h/2", Max: 2, Span: time.Hour, Breaker: true}
	for i := range 2 {
		if _, ref, err := s.Reserve(ctx, []guard.Window{global}); err != nil || ref.Refused() {
			t.Fatalf("send %d: %+v, %v", i, ref, err)
		}
	}
	_, ref, err := s.Reserve(ctx, []guard.Window{global})
	if err != nil || !ref.Breaker || ref.RetryAfter != time.Hour {
		t.Fatalf("over budget: %+v, %v; want the breaker tripped for 1h", ref, err)
	}
	full := guard.Window{Key: "full", Max: 1, Span: time.Hour}
	_, _, _ = s.Reserve(ctx, []guard.Window{full})
	_, ref, err = s.Reserve(ctx, []guard.Window{full, global})
	if err != nil || !ref.Breaker || ref.Window != 1 || ref.RetryAfter > time.Hour {
		t.Fatalf("breaker open: %+v, %v; want window 1's breaker", ref, err)
	}
	ttl := srv.Client().PTTL(ctx, s.Key("breaker:"+global.Key)).Val()
	if ttl <= 0 || ttl > time.Hour {
		t.Errorf("breaker key TTL %v, want within its window", ttl)
	}
}

// fakeVendor counts sends.
type fakeVendor struct {
	connector.Forward
	mu   sync.Mutex
	sent int
}

func (f *fakeVendor) Send(_ context.Context, msg *connector.Message) (*connector.Receipt, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.sent++
	return &connector.Receipt{MessageID: "SM1", To: msg.To}, nil
}

func (f *fakeVendor) ValidateConfig(context.Context, json.RawMessage) ([]connector.Violation, error) {
	return nil, nil
}

func (f *fakeVendor) Metadata(context.Context) (*connector.Metadata, error) {
	return &connector.Metadata{ID: "fake"}, nil
}

func (f *fakeVendor) Sent() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.sent
}

func newGuard(t *testing.T, s guard.Store, p guard.Policy, o guard.Options) (*guard.Guard, *fakeVendor) {
	t.Helper()
	v := &fakeVendor{}
	o.Policy, o.Store = p, s
	if o.KeySecret == nil {
		o.KeySecret = []byte("a secret shared by the replicas")
	}
	g, err := guard.New(v, o)
	if err != nil {
		t.Fatal(err)
	}
	return g, v
}

// TestKeys: after sends through guards, every key in Redis has a TTL within its window,
// carries the hash tag, and holds no phone number or IP address.
func TestKeys(t *testing.T) {
	srv := redistest.Start(t)
	s := open(t, srv, Options{})
	g, _ := newGuard(t, s, guard.DefaultPolicy(), guard.Options{})
	ctx := context.Background()
	sends := []struct{ to, ip string }{
		{"+447400123456", "198.51.100.77"}, {"+447400123456", "198.51.100.77"},
		{"+33612345678", "2001:db8:1:2::1"}, {"+14155550123", "203.0.113.9"},
	}
	for _, m := range sends {
		_, _ = g.Send(ctx, &connector.Message{To: m.to, ClientIP: m.ip, Config: json.RawMessage(`{}`)})
	}
	c := srv.Client()
	keys, err := c.Keys(ctx, "*").Result() // a test server: KEYS is fine here
	if err != nil {
		t.Fatal(err)
	}
	if len(keys) < 7 {
		t.Fatalf("keys %q, want at least the 7 windows of a send", keys)
	}
	longest := time.Duration(0)
	for _, l := range guard.DefaultPolicy().Prefix {
		longest = max(longest, l.Window)
	}
	for _, k := range keys {
		if !strings.HasPrefix(k, "{sms-connector:guard}:") {
			t.Errorf("key %q lacks the hash tag", k)
		}
		for _, secret := range []string{"447400", "7400123", "123456", "612345", "4155550", "198.51", "100.77", "2001", "db8", "203.0"} {
			if strings.Contains(k, secret) {
				t.Errorf("key %q holds %q in clear", k, secret)
			}
		}
		ttl := c.PTTL(ctx, k).Val()
		if ttl <= 0 || ttl > longest {
			t.Errorf("key %q: TTL %v, want within its window", k, ttl)
		}
	}
}

// TestSharedLimitsAndBreaker: two guards (two replicas) on one Redis count together, and
// the breaker one trips refuses sends on the other.
func TestSharedLimitsAndBreaker(t *testing.T) {
	srv := redistest.Start(t)
	p := guard.Policy{PrefixDigits: 4, IPv6PrefixBits: 64,
		Recipient: []guard.Limit{{Max: 2, Window: time.Hour}},
		Global:    guard.Limit{Max: 5, Window: time.Hour}}
	a, va := newGuard(t, open(t, srv, Options{}), p, guard.Options{})
	b, vb := newGuard(t, open(t, srv, Options{}), p, guard.Options{})
	ctx := context.Background()
	send := func(g *guard.Guard, to string) error {
		_, err := g.Send(ctx, &connector.Message{To: to, Config: json.RawMessage(`{}`)})
		return err
	}
	if err := send(a, "+447400123456"); err != nil {
		t.Fatal(err)
	}
	if err := send(b, "+447400123456"); err != nil {
		t.Fatal(err)
	}
	if err := send(a, "+447400123456"); connector.ReasonOf(err) != connector.ReasonRateLimited {
		t.Fatalf("third send to one recipient over two replicas: %v, want RATE_LIMITED", err)
	}
	for _, to := range []string{"+33612345678", "+14155550123", "+4915123456789"} {
		if err := send(b, to); err != nil {
			t.Fatal(err)
		}
	}
	err := send(b, "+2348031234567") // the sixth send: over the budget of 5, on replica b
	if e := (*connector.Error)(nil); !errors.As(err, &e) || !strings.Contains(e.Message, "breaker is open") {
		t.Fatalf("over the budget: %v, want the breaker", err)
	}
	err = send(a, "+61412345678") // replica a learns of the breaker from Redis
	if e := (*connector.Error)(nil); !errors.As(err, &e) || !strings.Contains(e.Message, "breaker is open") || e.RetryAfter > time.Hour {
		t.Fatalf("on the other replica: %v, want the breaker", err)
	}
	if va.Sent()+vb.Sent() != 5 {
		t.Errorf("%d sends reached the vendors, want the budget of 5", va.Sent()+vb.Sent())
	}
}

// TestStoreDown: with Redis stopped, the refuse policy answers STORE_UNAVAILABLE and sends
// nothing, the allow policy sends; once Redis is back, the same guards work again.
func TestStoreDown(t *testing.T) {
	srv := redistest.Start(t)
	p := guard.DefaultPolicy()
	var mu sync.Mutex
	told := 0
	onErr := func(error) { mu.Lock(); told++; mu.Unlock() }
	refuse, vr := newGuard(t, open(t, srv, Options{}), p, guard.Options{OnStoreError: onErr})
	allow, va := newGuard(t, open(t, srv, Options{}), p, guard.Options{FailOpen: true, OnStoreError: onErr})
	ctx := context.Background()
	msg := &connector.Message{To: "+447400123456", Config: json.RawMessage(`{}`)}
	srv.Stop()
	_, err := refuse.Send(ctx, msg)
	var e *connector.Error
	if !errors.As(err, &e) || e.Reason != connector.ReasonStoreUnavailable || e.RetryAfter != guard.StoreRetryAfter || vr.Sent() != 0 {
		t.Fatalf("refuse policy, Redis down: %v, %d sent; want STORE_UNAVAILABLE, nothing sent", err, vr.Sent())
	}
	for range 3 { // over the recipient's limit of 1 per 30s: nothing counts
		if _, err := allow.Send(ctx, msg); err != nil {
			t.Fatalf("allow policy, Redis down: %v", err)
		}
	}
	if va.Sent() != 3 || told != 4 {
		t.Errorf("allow policy: %d sent, %d store errors told; want 3 and 4", va.Sent(), told)
	}
	srv.Restart()
	if _, err := refuse.Send(ctx, msg); err != nil {
		t.Fatalf("Redis back: %v", err)
	}
	if _, err := allow.Send(ctx, msg); connector.ReasonOf(err) != connector.ReasonRateLimited {
		t.Fatalf("Redis back, second send to the recipient: %v, want RATE_LIMITED", err)
	}
}

// TestBoundedWait: a Redis that accepts connections and never answers holds a send no
// longer than the caller's deadline, or the store's timeout when the caller has none.
func TestBoundedWait(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var conns sync.WaitGroup
	hold := make(chan struct{})
	conns.Go(func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			conns.Go(func() { <-hold; c.Close() })
		}
	})
	t.Cleanup(func() { l.Close(); close(hold); conns.Wait() })
	c := redis.NewClient(&redis.Options{Addr: l.Addr().String(), ContextTimeoutEnabled: true,
		ReadTimeout: time.Hour, WriteTimeout: time.Hour, MaxRetries: -1})
	t.Cleanup(func() { _ = c.Close() })
	tests := []struct {
		name     string
		timeout  time.Duration // the store's
		deadline time.Duration // the caller's; 0: none
	}{
		{"caller's deadline", time.Hour, 200 * time.Millisecond},
		{"store's timeout", 200 * time.Millisecond, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := New(c, Options{Timeout: tt.timeout})
			if err != nil {
				t.Fatal(err)
			}
			g, v := newGuard(t, s, guard.DefaultPolicy(), guard.Options{})
			ctx := context.Background()
			if tt.deadline > 0 {
				var cancel context.CancelFunc
				ctx, cancel = context.WithTimeout(ctx, tt.deadline)
				defer cancel()
			}
			_, err = g.Send(ctx, &connector.Message{To: "+447400123456", Config: json.RawMessage(`{}`)})
			var ne net.Error
			timedOut := errors.Is(err, context.DeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout())
			if connector.ReasonOf(err) != connector.ReasonStoreUnavailable || !timedOut || v.Sent() != 0 {
				t.Errorf("Send: %v; want STORE_UNAVAILABLE after a timeout, nothing sent", err)
			}
		})
	}
}

func TestNewRejects(t *testing.T) {
	if _, err := New(nil, Options{}); err == nil {
		t.Error("New(nil) succeeded")
	}
	c := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1"})
	defer c.Close()
	if _, err := New(c, Options{Prefix: "a{b}"}); err == nil {
		t.Error("a prefix with braces was accepted")
	}
}
