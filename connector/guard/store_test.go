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
