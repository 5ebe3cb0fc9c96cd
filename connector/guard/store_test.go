package guard

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/sms-connector/sms-connector/internal/testutil"
)

// storeOp is one operation of a MemoryStore script.
type storeOp struct {
	advance time.Duration
	op      string // "reserve" or "release" (of the reservation named by ref)
	key     string
	limit   int
	window  time.Duration
	ref     int           // reserve: the name under which to keep the reservation; release: which
	retry   time.Duration // reserve: the expected retryAfter (0: granted)
	keys    int           // the expected Len afterwards; -1: do not check
}

func TestMemoryStore(t *testing.T) {
	const m = time.Minute
	tests := []struct {
		name string
		opts MemoryOptions
		ops  []storeOp
	}{
		{"sliding window", MemoryOptions{}, []storeOp{
			{0, "reserve", "a", 2, m, 1, 0, 1},
			{20 * time.Second, "reserve", "a", 2, m, 2, 0, 1},
			{0, "reserve", "a", 2, m, 0, 40 * time.Second, 1}, // the oldest frees at 60s
			{0, "reserve", "b", 2, m, 3, 0, 2},                // keys are independent
			{40 * time.Second, "reserve", "a", 2, m, 4, 0, 2},
			{0, "reserve", "a", 2, m, 0, 20 * time.Second, 2},
		}},
		{"release frees a slot", MemoryOptions{}, []storeOp{
			{0, "reserve", "a", 1, m, 1, 0, 1},
			{0, "reserve", "a", 1, m, 0, m, 1},
			{0, "release", "a", 0, 0, 1, 0, 0}, // the key's last slot: the key goes
			{0, "release", "a", 0, 0, 1, 0, 0}, // again: nothing happens
			{0, "reserve", "a", 1, m, 2, 0, 1},
		}},
		{"release of one slot among several", MemoryOptions{}, []storeOp{
			{0, "reserve", "a", 3, m, 1, 0, 1},
			{time.Second, "reserve", "a", 3, m, 2, 0, 1},
			{time.Second, "reserve", "a", 3, m, 3, 0, 1},
			{0, "release", "a", 0, 0, 2, 0, 1},
			{0, "reserve", "a", 3, m, 4, 0, 1},
			{0, "reserve", "a", 3, m, 0, 58 * time.Second, 1}, // the oldest (at 0) frees first
		}},
		{"lower limit than slots held", MemoryOptions{}, []storeOp{
			{0, "reserve", "a", 3, m, 1, 0, 1},
			{10 * time.Second, "reserve", "a", 3, m, 2, 0, 1},
			{10 * time.Second, "reserve", "a", 3, m, 3, 0, 1},
			{0, "reserve", "a", 1, m, 0, m, 1}, // all three must expire, the newest at 20s last
		}},
		{"sweep drops expired keys", MemoryOptions{SweepInterval: m}, []storeOp{
			{0, "reserve", "a", 1, m, 1, 0, 1},
			{0, "reserve", "b", 1, 2 * m, 2, 0, 2},
			{m, "reserve", "c", 1, m, 3, 0, 2}, // a expired and was swept
			{m, "reserve", "d", 1, m, 4, 0, 1}, // b and c too
		}},
		{"full store refuses new keys only", MemoryOptions{MaxKeys: 2}, []storeOp{
			{0, "reserve", "a", 2, m, 1, 0, 1},
			{0, "reserve", "b", 2, m, 2, 0, 2},
			{0, "reserve", "c", 2, m, -1, 0, 2}, // ErrStoreFull
			{0, "reserve", "a", 2, m, 3, 0, 2},  // a known key still works
			{0, "release", "b", 0, 0, 2, 0, 1},
			{0, "reserve", "c", 2, m, 4, 0, 2},
			{m, "reserve", "d", 2, m, 5, 0, 1}, // full, but a sweep frees a and c
		}},
		{"clock going back", MemoryOptions{}, []storeOp{
			{10 * time.Second, "reserve", "a", 3, m, 1, 0, 1},
			{-5 * time.Second, "reserve", "a", 3, m, 2, 0, 1},
			{70 * time.Second, "reserve", "a", 3, m, 3, 0, 1}, // at 75s: both earlier slots expired
			{0, "reserve", "a", 2, m, 4, 0, 1},
			{0, "reserve", "a", 2, m, 0, m, 1},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clk := testutil.NewClock()
			tt.opts.Now = clk.Now
			s := NewMemoryStore(tt.opts)
			ctx := context.Background()
			refs := map[int]Reservation{}
			for i, op := range tt.ops {
				clk.Advance(op.advance)
				switch op.op {
				case "reserve":
					r, ref, err := s.Reserve(ctx, []Window{{Key: op.key, Max: op.limit, Span: op.window}})
					retry := ref.RetryAfter
					if op.ref < 0 {
						if !errors.Is(err, ErrStoreFull) {
							t.Fatalf("op %d: err %v, want ErrStoreFull", i, err)
						}
						break
					}
					if err != nil || retry != op.retry {
						t.Fatalf("op %d: retry %v, err %v; want retry %v", i, retry, err, op.retry)
					}
					if retry == 0 && (len(r.Keys) != 1 || r.Keys[0] != op.key || r.ID == "") {
						t.Fatalf("op %d: reservation %+v", i, r)
					}
					if retry > 0 && (r.ID != "" || r.Keys != nil) {
						t.Fatalf("op %d: a refusal returned reservation %+v", i, r)
					}
					refs[op.ref] = r
				case "release":
					if err := s.Release(ctx, refs[op.ref]); err != nil {
						t.Fatalf("op %d: %v", i, err)
					}
				}
				if op.keys >= 0 && s.Len() != op.keys {
					t.Fatalf("op %d: %d keys, want %d", i, s.Len(), op.keys)
				}
			}
		})
	}
}

func TestMemoryStoreRejectsBadArguments(t *testing.T) {
	s := NewMemoryStore(MemoryOptions{})
	for _, tt := range []struct {
		limit  int
		window time.Duration
	}{{0, time.Minute}, {-1, time.Minute}, {1, 0}, {1, -time.Second}} {
		if _, _, err := s.Reserve(context.Background(), []Window{{Key: "k", Max: tt.limit, Span: tt.window}}); err == nil {
			t.Errorf("Reserve(limit %d, window %v) succeeded", tt.limit, tt.window)
		}
	}
	if err := s.Release(context.Background(), Reservation{Keys: []string{"k"}, ID: "not ours"}); err != nil {
		t.Errorf("Release of a foreign reservation: %v", err)
	}
}

// TestMemoryStoreConcurrent: a limit holds under concurrent Reserve and Release (run with -race).
func TestMemoryStoreConcurrent(t *testing.T) {
	s := NewMemoryStore(MemoryOptions{Now: testutil.NewClock().Now})
	const limit = 7
	var (
		wg      sync.WaitGroup
		mu      sync.Mutex
		granted []Reservation
	)
	for i := range 32 {
		wg.Go(func() {
			for j := range 50 {
				r, ref, err := s.Reserve(context.Background(), []Window{{Key: fmt.Sprint("k", j%3), Max: limit, Span: time.Hour}})
				retry := ref.RetryAfter
				if err != nil {
					t.Error(err)
					return
				}
				if retry > 0 {
					continue
				}
				if (i+j)%2 == 0 {
					_ = s.Release(context.Background(), r)
					continue
				}
				mu.Lock()
				granted = append(granted, r)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	held := map[string]int{}
	for _, r := range granted {
		held[r.Keys[0]]++
	}
	for k, n := range held {
		if n > limit {
			t.Errorf("key %s holds %d slots, over the limit of %d", k, n, limit)
		}
	}
}

// observeOp is one operation of a MemoryStore delivery-feedback script: an outcome to
// observe, or (id "") a Reserve of the key's cool-down window.
type observeOp struct {
	advance     time.Duration
	key         string
	id          string
	undelivered bool
	want        Tally         // observe: the key's tally
	retry       time.Duration // reserve: the expected RetryAfter (0: granted)
}

func TestMemoryStoreObserve(t *testing.T) {
	const m = time.Minute
	rule := FeedbackRule{Span: time.Hour, MinOutcomes: 4, MaxUndeliveredPPM: 500_000, Cooldown: 10 * m}
	tests := []struct {
		name string
		ops  []observeOp
	}{
		{"trips above the share after the minimum, and cools down", []observeOp{
			{0, "a", "m1", true, Tally{Outcomes: 1, Undelivered: 1, Counted: true}, 0},
			{0, "a", "m1", true, Tally{Outcomes: 1, Undelivered: 1}, 0}, // a replay: not counted
			{0, "a", "m2", false, Tally{Outcomes: 2, Undelivered: 1, Counted: true}, 0},
			{0, "a", "m3", true, Tally{Outcomes: 3, Undelivered: 2, Counted: true}, 0}, // 2/3, under the minimum
			{0, "a", "", false, Tally{}, 0},
			{0, "a", "m4", true, Tally{Outcomes: 4, Undelivered: 3, Counted: true, Tripped: true, CooldownLeft: 10 * m}, 0},
			{0, "a", "", false, Tally{}, 10 * m},
			{0, "b", "", false, Tally{}, 0},                                                  // another key is not cooling down
			{m, "a", "m5", true, Tally{Outcomes: 4, Undelivered: 3, CooldownLeft: 9 * m}, 0}, // ignored while cooling
			{0, "a", "", false, Tally{}, 9 * m},
			{9 * m, "a", "", false, Tally{}, 0}, // the cool-down is over
			// The window still holds 3 of 4 undelivered: the next outcome trips it again.
			{0, "a", "m6", false, Tally{Outcomes: 5, Undelivered: 3, Counted: true, Tripped: true, CooldownLeft: 10 * m}, 0},
			{0, "a", "m4", true, Tally{Outcomes: 5, Undelivered: 3, CooldownLeft: 10 * m}, 0},
		}},
		{"the share must be above the maximum", []observeOp{
			{0, "a", "m1", true, Tally{Outcomes: 1, Undelivered: 1, Counted: true}, 0},
			{0, "a", "m2", true, Tally{Outcomes: 2, Undelivered: 2, Counted: true}, 0},
			{0, "a", "m3", false, Tally{Outcomes: 3, Undelivered: 2, Counted: true}, 0},
			{0, "a", "m4", false, Tally{Outcomes: 4, Undelivered: 2, Counted: true}, 0}, // 2/4 = the maximum
			{0, "a", "", false, Tally{}, 0},
		}},
		{"outcomes expire with the window", []observeOp{
			{0, "a", "m1", true, Tally{Outcomes: 1, Undelivered: 1, Counted: true}, 0},
			{30 * m, "a", "m2", true, Tally{Outcomes: 2, Undelivered: 2, Counted: true}, 0},
			{30 * m, "a", "m3", true, Tally{Outcomes: 2, Undelivered: 2, Counted: true}, 0}, // m1 left
			{0, "a", "m1", true, Tally{Outcomes: 3, Undelivered: 3, Counted: true}, 0},      // a replay after its window counts
			{0, "a", "m4", true, Tally{Outcomes: 4, Undelivered: 4, Counted: true, Tripped: true, CooldownLeft: 10 * m}, 0},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clk := testutil.NewClock()
			s := NewMemoryStore(MemoryOptions{Now: clk.Now})
			ctx := context.Background()
			for i, op := range tt.ops {
				clk.Advance(op.advance)
				if op.id == "" {
					r, ref, err := s.Reserve(ctx, []Window{{Key: op.key, Cooldown: true}})
					if err != nil || ref.RetryAfter != op.retry || ref.Breaker || len(r.Keys) != 0 {
						t.Fatalf("op %d: reserve %+v, %+v, %v; want retry %v and no slot", i, r, ref, err, op.retry)
					}
					continue
				}
				got, err := s.Observe(ctx, Outcome{Keys: []string{op.key}, ID: op.id, Undelivered: op.undelivered}, rule)
				if err != nil || len(got) != 1 || got[0] != op.want {
					t.Fatalf("op %d: %+v, %v; want %+v", i, got, err, op.want)
				}
			}
		})
	}
}

// TestMemoryStoreObserveScopes: one outcome counts in each of its keys, which trip apart.
func TestMemoryStoreObserveScopes(t *testing.T) {
	s := NewMemoryStore(MemoryOptions{Now: testutil.NewClock().Now})
	ctx := context.Background()
	rule := FeedbackRule{Span: time.Hour, MinOutcomes: 2, MaxUndeliveredPPM: 500_000, Cooldown: time.Hour}
	_, _ = s.Observe(ctx, Outcome{Keys: []string{"country"}, ID: "m0", Undelivered: false}, rule)
	_, _ = s.Observe(ctx, Outcome{Keys: []string{"range", "country"}, ID: "m1", Undelivered: true}, rule)
	got, err := s.Observe(ctx, Outcome{Keys: []string{"range", "country"}, ID: "m2", Undelivered: true}, rule)
	want := []Tally{
		{Outcomes: 2, Undelivered: 2, Counted: true, Tripped: true, CooldownLeft: time.Hour},
		{Outcomes: 3, Undelivered: 2, Counted: true, Tripped: true, CooldownLeft: time.Hour},
	}
	if err != nil || len(got) != 2 || got[0] != want[0] || got[1] != want[1] {
		t.Fatalf("tallies %+v, %v; want %+v", got, err, want)
	}
	if s.Len() != 2 {
		t.Errorf("%d keys, want the 2 outcome windows", s.Len())
	}
}

// TestMemoryStoreObserveBounds: a window keeps the newest MaxOutcomesPerWindow outcomes, the
// store's key bound covers outcome windows, and a rule out of range is refused.
func TestMemoryStoreObserveBounds(t *testing.T) {
	ctx := context.Background()
	rule := FeedbackRule{Span: time.Hour, MinOutcomes: MaxOutcomesPerWindow, MaxUndeliveredPPM: 999_999, Cooldown: time.Hour}
	s := NewMemoryStore(MemoryOptions{Now: testutil.NewClock().Now, MaxKeys: 2})
	var last []Tally
	for i := range MaxOutcomesPerWindow + 5 {
		var err error
		if last, err = s.Observe(ctx, Outcome{Keys: []string{"a"}, ID: fmt.Sprint("m", i), Undelivered: i < 10}, rule); err != nil {
			t.Fatal(err)
		}
	}
	if last[0].Outcomes != MaxOutcomesPerWindow || last[0].Undelivered != 5 {
		t.Errorf("tally %+v; want %d outcomes, 5 undelivered (the 5 oldest dropped)", last[0], MaxOutcomesPerWindow)
	}
	if got, _ := s.Observe(ctx, Outcome{Keys: []string{"a"}, ID: "m0"}, rule); !got[0].Counted {
		t.Error("an outcome dropped from a full window was not counted again")
	}
	if _, _, err := s.Reserve(ctx, []Window{{Key: "w", Max: 1, Span: time.Hour}}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Observe(ctx, Outcome{Keys: []string{"b"}, ID: "m"}, rule); !errors.Is(err, ErrStoreFull) {
		t.Errorf("a third key in a store of 2: %v, want ErrStoreFull", err)
	}
	for _, bad := range []FeedbackRule{
		{MinOutcomes: 1, MaxUndeliveredPPM: 1, Cooldown: time.Hour},
		{Span: time.Hour, MaxUndeliveredPPM: 1, Cooldown: time.Hour},
		{Span: time.Hour, MinOutcomes: 1, MaxUndeliveredPPM: 1_000_000, Cooldown: time.Hour},
		{Span: time.Hour, MinOutcomes: 1, MaxUndeliveredPPM: 1},
	} {
		if _, err := s.Observe(ctx, Outcome{Keys: []string{"a"}, ID: "x"}, bad); err == nil {
			t.Errorf("rule %+v accepted", bad)
		}
	}
}
