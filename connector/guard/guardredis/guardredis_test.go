package guardredis

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"strconv"
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

// TestObserve: the Redis store records outcomes as the memory store does: once per message,
// tripping above the share after the minimum, ignoring outcomes while the cool-down lasts,
// which Reserve's cool-down window reports; every key has a TTL within its window or
// cool-down.
func TestObserve(t *testing.T) {
	srv := redistest.Start(t)
	s := open(t, srv, Options{})
	ctx := context.Background()
	rule := guard.FeedbackRule{Span: time.Hour, MinOutcomes: 4, MaxUndeliveredPPM: 500_000, Cooldown: 10 * time.Minute}
	observe := func(id string, undelivered bool, keys ...string) []guard.Tally {
		t.Helper()
		got, err := s.Observe(ctx, guard.Outcome{Keys: keys, ID: id, Undelivered: undelivered}, rule)
		if err != nil || len(got) != len(keys) {
			t.Fatalf("observe %s: %+v, %v", id, got, err)
		}
		return got
	}
	steps := []struct {
		id          string
		undelivered bool
		want        guard.Tally // of key "a"; CooldownLeft checked apart
	}{
		{"m1", true, guard.Tally{Outcomes: 1, Undelivered: 1, Counted: true}},
		{"m1", true, guard.Tally{Outcomes: 1, Undelivered: 1}},
		{"m2", false, guard.Tally{Outcomes: 2, Undelivered: 1, Counted: true}},
		{"m3", false, guard.Tally{Outcomes: 3, Undelivered: 1, Counted: true}},
		{"m4", true, guard.Tally{Outcomes: 4, Undelivered: 2, Counted: true}}, // 2/4: not above half
		{"m5", true, guard.Tally{Outcomes: 5, Undelivered: 3, Counted: true, Tripped: true}},
		{"m6", true, guard.Tally{Outcomes: 5, Undelivered: 3}}, // cooling down: ignored
	}
	for i, st := range steps {
		got := observe(st.id, st.undelivered, "a")[0]
		left := got.CooldownLeft
		got.CooldownLeft = 0
		if got != st.want || (st.want.Tripped && left != rule.Cooldown) || (i == len(steps)-1 && (left <= 0 || left > rule.Cooldown)) {
			t.Fatalf("step %d (%s): %+v (cool-down left %v), want %+v", i, st.id, got, left, st.want)
		}
	}
	cool := guard.Window{Key: "a", Cooldown: true}
	slot := guard.Window{Key: "rcpt", Max: 1, Span: time.Hour}
	r, ref, err := s.Reserve(ctx, []guard.Window{slot, cool})
	if err != nil || ref.Window != 1 || ref.Breaker || ref.RetryAfter <= 0 || ref.RetryAfter > rule.Cooldown {
		t.Fatalf("reserve while cooling down: %+v, %+v, %v; want window 1 refused", r, ref, err)
	}
	if n := srv.Client().ZCard(ctx, s.Key("rcpt")).Val(); n != 0 {
		t.Errorf("a refused reserve took %d slots", n)
	}
	other := guard.Window{Key: "b", Cooldown: true}
	r, ref, err = s.Reserve(ctx, []guard.Window{slot, other})
	if err != nil || ref.Refused() || len(r.Keys) != 1 || r.Keys[0] != "rcpt" {
		t.Fatalf("reserve with a key not cooling down: %+v, %+v, %v; want granted, one slot", r, ref, err)
	}
	c := srv.Client()
	for k, within := range map[string]time.Duration{
		s.Key("outcomes:a"): rule.Span, s.Key("undelivered:a"): rule.Span, s.Key("cooldown:a"): rule.Cooldown,
	} {
		if ttl := c.PTTL(ctx, k).Val(); ttl <= 0 || ttl > within {
			t.Errorf("key %q: TTL %v, want within %v", k, ttl, within)
		}
	}
	// The cool-down's end (its key expiring) lets the key through and counts again.
	c.Del(ctx, s.Key("cooldown:a"))
	if _, ref, err := s.Reserve(ctx, []guard.Window{cool}); err != nil || ref.Refused() {
		t.Fatalf("after the cool-down: %+v, %v", ref, err)
	}
	if got := observe("m7", true, "a", "b")[0]; !got.Counted || !got.Tripped || got.Outcomes != 6 || got.Undelivered != 4 {
		t.Errorf("after the cool-down: %+v; want counted, and tripped again at 4 of 6", got)
	}
}

// TestObserveSharedAndBounded: two replicas count one message once; a window keeps the newest
// guard.MaxOutcomesPerWindow outcomes, the undelivered ones among them.
func TestObserveSharedAndBounded(t *testing.T) {
	srv := redistest.Start(t)
	a, b := open(t, srv, Options{}), open(t, srv, Options{})
	ctx := context.Background()
	rule := guard.FeedbackRule{Span: time.Hour, MinOutcomes: guard.MaxOutcomesPerWindow, MaxUndeliveredPPM: 999_999, Cooldown: time.Hour}
	if _, err := a.Observe(ctx, guard.Outcome{Keys: []string{"k"}, ID: "m0", Undelivered: true}, rule); err != nil {
		t.Fatal(err)
	}
	got, err := b.Observe(ctx, guard.Outcome{Keys: []string{"k"}, ID: "m0", Undelivered: true}, rule)
	if err != nil || got[0].Counted || got[0].Outcomes != 1 {
		t.Fatalf("the same message on the other replica: %+v, %v; want not counted", got, err)
	}
	pipe := srv.Client().Pipeline() // fill the window directly, as many outcomes would
	for i := 1; i < guard.MaxOutcomesPerWindow+5; i++ {
		pipe.ZAdd(ctx, a.Key("outcomes:k"), redis.Z{Score: float64(time.Now().UnixMicro()), Member: "f" + strconv.Itoa(i)})
		if i < 10 {
			pipe.ZAdd(ctx, a.Key("undelivered:k"), redis.Z{Score: float64(time.Now().UnixMicro()), Member: "f" + strconv.Itoa(i)})
		}
	}
	if _, err := pipe.Exec(ctx); err != nil {
		t.Fatal(err)
	}
	got, err = a.Observe(ctx, guard.Outcome{Keys: []string{"k"}, ID: "new"}, rule)
	if err != nil || !got[0].Counted || got[0].Outcomes != guard.MaxOutcomesPerWindow || got[0].Undelivered != 4 {
		t.Fatalf("over the bound: %+v, %v; want %d outcomes, 4 undelivered (m0 and f1..f5 dropped)", got, err, guard.MaxOutcomesPerWindow)
	}
}

// TestDeliveryFeedbackAcrossReplicas: outcomes told to one replica's guard shut the range on
// the other's, and Redis holds no number.
func TestDeliveryFeedbackAcrossReplicas(t *testing.T) {
	srv := redistest.Start(t)
	p := guard.DefaultPolicy()
	p.DeliveryFeedback.MinOutcomes = 3
	var trips []guard.DeliveryTrip
	a, _ := newGuard(t, open(t, srv, Options{}), p, guard.Options{OnTrip: func(tr guard.DeliveryTrip) { trips = append(trips, tr) }})
	b, vb := newGuard(t, open(t, srv, Options{}), p, guard.Options{})
	ctx := context.Background()
	for i, to := range []string{"+447400120001", "+447400120002", "+447400120003"} {
		st := &connector.MessageStatus{MessageID: "SM" + strconv.Itoa(i), To: to, State: connector.DeliveryUndelivered, Reason: connector.ReasonRecipientUnreachable}
		if err := a.ObserveDelivery(ctx, st); err != nil {
			t.Fatal(err)
		}
	}
	if len(trips) != 1 || trips[0].Scope != guard.ScopeRange || trips[0].Country != "GB" {
		t.Fatalf("trips %+v, want one of the range", trips)
	}
	_, err := b.Send(ctx, &connector.Message{To: "+447400129999", Config: json.RawMessage(`{}`)})
	var e *connector.Error
	if !errors.As(err, &e) || e.Reason != connector.ReasonRateLimited || e.RetryAfter <= 0 || e.RetryAfter > time.Hour || vb.Sent() != 0 {
		t.Fatalf("the other replica, same range: %v; want RATE_LIMITED for the cool-down, nothing sent", err)
	}
	if _, err := b.Send(ctx, &connector.Message{To: "+447400990000", Config: json.RawMessage(`{}`)}); err != nil {
		t.Fatalf("another range: %v", err)
	}
	keys, err := srv.Client().Keys(ctx, "*").Result()
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range keys {
		if !strings.HasPrefix(k, "{sms-connector:guard}:") || strings.Contains(k, "7400") || strings.Contains(k, "SM0") {
			t.Errorf("key %q: want the hash tag and no number or message id in clear", k)
		}
	}
}
