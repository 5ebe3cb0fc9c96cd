package idempotency

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sms-connector/sms-connector/connector"
	"github.com/sms-connector/sms-connector/connector/console"
	"github.com/sms-connector/sms-connector/internal/testutil"
)

// lineCounter counts the lines the console connector writes: one per message sent. With fail
// set, its writes fail and write nothing.
type lineCounter struct {
	mu   sync.Mutex
	n    int
	fail bool
}

func (w *lineCounter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.fail {
		return 0, errors.New("disk full")
	}
	w.n += bytes.Count(p, []byte("\n"))
	return len(p), nil
}

// Sent reports how many messages were written.
func (w *lineCounter) Sent() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.n
}

// newBoundStore is a store with o and a fake clock around the console connector.
func newBoundStore(tb testing.TB, o Options) (*Connector, *testutil.Clock, *lineCounter) {
	tb.Helper()
	clk := testutil.NewClock()
	out := &lineCounter{}
	o.Now = clk.Now
	// The console keeps no delivery statuses here: the memory tests measure the store alone.
	c, err := New(console.New(console.Options{Writer: out, KeptStatuses: -1}), o)
	if err != nil {
		tb.Fatal(err)
	}
	return c, clk, out
}

// boundMsg is a sign-in message with idempotency key key, with the console's default config.
func boundMsg(key string) *connector.Message {
	return &connector.Message{To: "+14155550123", UsageType: connector.UsageSignIn, Config: console.DefaultConfig(),
		IdempotencyKey: key, Payload: connector.Payload{Code: "123456"}}
}

// storedSize is what one key with a console receipt takes, as the store counts it.
func storedSize(t *testing.T) int64 {
	t.Helper()
	c, _, _ := newBoundStore(t, Options{})
	if _, err := c.Send(context.Background(), boundMsg("probe")); err != nil {
		t.Fatal(err)
	}
	return c.mem.bytes
}

// reasonOf is err's reason, "" for no error.
func reasonOf(err error) connector.Reason {
	if err == nil {
		return ""
	}
	return connector.ReasonOf(err)
}

// refusal checks that err is the full store's refusal with RetryAfter want.
func refusal(t *testing.T, err error, want time.Duration) {
	t.Helper()
	var ce *connector.Error
	if !errors.As(err, &ce) || ce.Reason != connector.ReasonRateLimited || ce.RetryAfter != want {
		t.Fatalf("got %v, want RATE_LIMITED with RetryAfter %v", err, want)
	}
}

// TestFullStoreRefusesNewKeys: a store full by entries or by bytes refuses new keys with
// RATE_LIMITED until its oldest answer expires, keeps answering the keys it holds to the end
// of their windows, and takes new keys again once answers expire.
func TestFullStoreRefusesNewKeys(t *testing.T) {
	perKey := storedSize(t)
	const w = time.Hour
	for _, tt := range []struct {
		name string
		o    Options
	}{
		{"MaxEntries", Options{Window: w, MaxEntries: 3}},
		{"MaxBytes", Options{Window: w, MaxBytes: 3*perKey + entryCost - 1}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c, clk, out := newBoundStore(t, tt.o)
			ctx := context.Background()
			receipts := map[string]string{}
			for i := range 3 { // k0, k1, k2 answered 1 s apart
				clk.Advance(time.Second)
				k := fmt.Sprint("k", i)
				r, err := c.Send(ctx, boundMsg(k))
				if err != nil {
					t.Fatal(err)
				}
				receipts[k] = r.MessageID
			}
			kept := func() {
				t.Helper()
				for k, id := range receipts {
					if r, err := c.Send(ctx, boundMsg(k)); err != nil || r.MessageID != id {
						t.Fatalf("%s: %+v, %v; want its stored receipt %s", k, r, err, id)
					}
				}
				if out.Sent() != 3 {
					t.Fatalf("%d messages sent, want 3", out.Sent())
				}
			}

			clk.Advance(time.Second) // k0 expires in w-3s
			for i := range 10 {
				_, err := c.Send(ctx, boundMsg(fmt.Sprint("new", i)))
				refusal(t, err, w-3*time.Second)
			}
			kept()
			if c.Len() != 3 || c.mem.bytes != 3*perKey || c.mem.bytes > c.mem.maxBytes {
				t.Errorf("%d keys, %d bytes counted; want 3, %d", c.Len(), c.mem.bytes, 3*perKey)
			}

			clk.Advance(w - 3*time.Second - time.Nanosecond) // the last moment of k0's window
			_, err := c.Send(ctx, boundMsg("new0"))
			refusal(t, err, minRetryAfter)
			kept()

			clk.Advance(time.Nanosecond) // k0 expires: room for one key
			if _, err := c.Send(ctx, boundMsg("new0")); err != nil || out.Sent() != 4 {
				t.Fatalf("after k0's window: %v, %d sent; want a new send", err, out.Sent())
			}
			_, err = c.Send(ctx, boundMsg("k0")) // forgotten, and no room until k1 expires
			refusal(t, err, time.Second)
			if c.Len() != 3 || c.mem.bytes != 3*perKey {
				t.Errorf("%d keys, %d bytes counted; want 3, %d", c.Len(), c.mem.bytes, 3*perKey)
			}
		})
	}
}

// TestStoredErrorsCount: a stored error counts against MaxBytes with its text and violations,
// and fills the store like a receipt; an error that is not stored gives its room back.
func TestStoredErrorsCount(t *testing.T) {
	// Ten templates without {{code}}: INVALID_CONFIG with ten violations.
	var bad []map[string]string
	for i := range 10 {
		bad = append(bad, map[string]string{"usageType": "Generic", "locale": fmt.Sprint("l", i), "content": strings.Repeat("no code here ", 5)})
	}
	badConfig, err := json.Marshal(map[string]any{"templates": bad})
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name      string
		config    json.RawMessage
		failWrite bool
		reason    connector.Reason
		stored    bool
	}{
		{"receipt", console.DefaultConfig(), false, "", true},
		{"template not found", json.RawMessage(`{"templates":[{"usageType":"Register","content":"{{code}}"}]}`), false, connector.ReasonTemplateNotFound, true},
		{"invalid config", badConfig, false, connector.ReasonInvalidConfig, true},
		{"provider unavailable", console.DefaultConfig(), true, connector.ReasonProviderUnavailable, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c, _, out := newBoundStore(t, Options{})
			out.fail = tt.failWrite
			m := boundMsg("k")
			m.Config = tt.config
			r, err := c.Send(context.Background(), m)
			if reasonOf(err) != tt.reason {
				t.Fatalf("send: %v, want reason %q", err, tt.reason)
			}
			if !tt.stored {
				if c.Len() != 0 || c.mem.bytes != 0 {
					t.Errorf("%d keys, %d bytes counted after an answer that is not stored; want 0, 0", c.Len(), c.mem.bytes)
				}
				return
			}
			// At least the fixed costs and every string the answer keeps.
			least := int64(entryCost)
			if r != nil {
				least += receiptCost + int64(len(r.MessageID)+len(r.Status)+len(r.Encoding)+len(r.To)+len(r.Sender))
			}
			var ce *connector.Error
			if errors.As(err, &ce) {
				least += errorCost + int64(len(ce.Error()))
				for _, v := range ce.Violations {
					least += violationCost + int64(len(v.Field)+len(v.Description))
				}
			}
			if c.Len() != 1 || c.mem.bytes < least {
				t.Fatalf("%d keys, %d bytes counted; want 1, at least %d", c.Len(), c.mem.bytes, least)
			}
			// A store with room for exactly this answer is full.
			full, _, _ := newBoundStore(t, Options{MaxBytes: c.mem.bytes + entryCost - 1})
			if _, err := full.Send(context.Background(), m); reasonOf(err) != tt.reason {
				t.Fatalf("send: %v, want reason %q", err, tt.reason)
			}
			_, err = full.Send(context.Background(), boundMsg("another"))
			refusal(t, err, DefaultWindow)
		})
	}
}

// TestExpiryReleasesMemory: once the answers of many keys expire, the heap they took is given
// back to the Go runtime (the map and queue that held them are gone), not only their count.
func TestExpiryReleasesMemory(t *testing.T) {
	const n = 5_000
	c, clk, _ := newBoundStore(t, Options{Window: time.Minute})
	ctx := context.Background()
	if _, err := c.Send(ctx, boundMsg("warm-up")); err != nil {
		t.Fatal(err)
	}
	before := liveHeap()
	for i := range n {
		if _, err := c.Send(ctx, boundMsg(strconv.Itoa(i))); err != nil {
			t.Fatal(err)
		}
	}
	full := liveHeap()
	clk.Advance(time.Minute)
	if _, err := c.Send(ctx, boundMsg("after")); err != nil {
		t.Fatal(err)
	}
	after := liveHeap()
	if c.Len() != 1 || c.mem.bytes != storedSize(t) {
		t.Errorf("%d keys, %d bytes counted after the window; want 1, %d", c.Len(), c.mem.bytes, storedSize(t))
	}
	t.Logf("live heap: %d bytes before, %d with %d keys, %d after they expired", before, full, n, after)
	// Each key takes a few hundred bytes; a map or queue kept at its peak size, 40 or more.
	if grown := after - before; grown > n*8 {
		t.Errorf("%d bytes of live heap not given back", grown)
	}
}

// liveHeap is the bytes of the heap's live objects, after a full collection.
func liveHeap() int64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return int64(m.HeapAlloc)
}

// BenchmarkStore100k fills a store with 100,000 distinct keys answered by the console
// connector, then lets them expire. It reports the live heap per key against the store's own
// count (counted-B/key, what MaxBytes bounds), the live heap and the process's RSS with the
// keys stored and after they expired (RSS after the runtime has returned free memory to the
// system, as it does over a few minutes on its own).
func BenchmarkStore100k(b *testing.B) {
	const n = 100_000
	config := console.DefaultConfig() // one tenant: the messages share their config's bytes
	ctx := context.Background()
	var base, full, expired, counted int64
	var rssBase, rssFull, rssExpired int64
	for b.Loop() {
		b.StopTimer()
		c, clk, _ := newBoundStore(b, Options{})
		debug.FreeOSMemory()
		base, rssBase = liveHeap(), rss()
		b.StartTimer()
		for i := range n {
			m := boundMsg(fmt.Sprintf("signin-%08d", i))
			m.Config = config
			if _, err := c.Send(ctx, m); err != nil {
				b.Fatal(err)
			}
		}
		b.StopTimer()
		full, counted = liveHeap(), c.mem.bytes
		rssFull = rss()
		clk.Advance(DefaultWindow)
		if _, err := c.Send(ctx, boundMsg("after")); err != nil {
			b.Fatal(err)
		}
		expired = liveHeap()
		debug.FreeOSMemory()
		rssExpired = rss()
		if c.Len() != 1 {
			b.Fatalf("%d keys after the window, want 1", c.Len())
		}
		b.StartTimer()
	}
	const mib = 1 << 20
	b.ReportMetric(float64(full-base)/n, "heap-B/key")
	b.ReportMetric(float64(counted)/n, "counted-B/key")
	b.ReportMetric(float64(full-base)/mib, "heap-MiB-100k")
	b.ReportMetric(float64(expired-base)/mib, "heap-MiB-expired")
	if rssFull > 0 {
		b.ReportMetric(float64(rssBase)/mib, "rss-MiB-empty")
		b.ReportMetric(float64(rssFull)/mib, "rss-MiB-100k")
		b.ReportMetric(float64(rssExpired)/mib, "rss-MiB-expired")
	}
}

// rss is the process's resident set size from /proc/self/status, 0 where there is none.
func rss() int64 {
	status, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for line := range strings.SplitSeq(string(status), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			if err != nil {
				return 0
			}
			return kb << 10
		}
	}
	return 0
}
