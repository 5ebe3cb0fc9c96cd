package guard

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"time"
)

// Store keeps the sliding windows of a Guard's limits and the breaker of its global budget.
// The Guard needs only these two operations, so a store shared by several processes
// (guardredis: sorted sets in Redis) can replace the in-memory one; with a shared Store, the
// processes' limits hold as if they were one. Implementations must be safe for concurrent use.
type Store interface {
	// Reserve takes one slot of every window in ws, or none: all of them at once, atomically,
	// so two sends racing for a window's last slot cannot both get it. It refuses when a
	// window is full or a breaker window's breaker is open, and then the Refusal says which
	// and when to try again (RetryAfter positive); a granted Reserve returns a zero Refusal.
	// err reports a failure of the store itself, and then nothing was taken. Keys carry no
	// secret and no phone number in clear.
	Reserve(ctx context.Context, ws []Window) (Reservation, Refusal, error)
	// Release gives the slots of a Reservation back, as if they had never been taken.
	// Releasing slots that have expired or were released already does nothing.
	Release(ctx context.Context, r Reservation) error
}

// Window is one sliding-window limit a send counts against: at most Max slots taken within
// the last Span.
type Window struct {
	// Key names the window in the store.
	Key string
	// Max is how many slots the window holds (at least 1).
	Max int
	// Span is how long a slot counts (positive).
	Span time.Duration
	// Breaker gives the window a breaker: when a Reserve finds the window full, the breaker
	// trips and every Reserve naming the window is refused for one Span from then (the global
	// budget). The window's slots need not all have expired for it to close.
	Breaker bool
}

// Reservation is the slots one granted Store.Reserve took, one in each of its windows.
type Reservation struct {
	// Keys are the windows the slots belong to.
	Keys []string
	// ID tells the slots apart from the windows' other slots; the store chooses it, unique
	// among every process sharing the store.
	ID string
}

// Refusal is why a Store.Reserve took no slot; its zero value means none was refused.
type Refusal struct {
	// Window is the index, in the windows given to Reserve, of the full window or of the
	// window whose breaker is open.
	Window int
	// Breaker reports that the window's breaker is open (it was, or it tripped now).
	Breaker bool
	// RetryAfter is how long until the window has a free slot, or until the breaker closes;
	// positive for a refusal.
	RetryAfter time.Duration
}

// Refused reports whether r is a refusal.
func (r Refusal) Refused() bool { return r.RetryAfter > 0 }

// ErrStoreFull is returned by MemoryStore.Reserve when a new key would exceed MaxKeys even
// after expired keys are swept. A Guard answers it with RATE_LIMITED: under an attack broad
// enough to fill the store, refusing is cheaper than forgetting limits.
var ErrStoreFull = errors.New("guard: limit store is full")

// Defaults of MemoryOptions.
const (
	// DefaultMaxKeys bounds a MemoryStore: about 20 MB at the default policy's sizes.
	DefaultMaxKeys = 100_000
	// DefaultSweepInterval is how often a MemoryStore drops its expired keys.
	DefaultSweepInterval = time.Minute
)

// MemoryOptions configure a MemoryStore; zero values take the defaults.
type MemoryOptions struct {
	// Now is the clock (default time.Now). Tests pass a fake one.
	Now func() time.Time
	// MaxKeys bounds how many keys the store holds (default DefaultMaxKeys).
	MaxKeys int
	// SweepInterval is how often, by Now, a Reserve first drops every expired key (default
	// DefaultSweepInterval). Keys whose slots were all released go at once.
	SweepInterval time.Duration
}

// MemoryStore is the in-memory Store of one process: for each key, the times of the slots taken
// within its window (a sliding-window log), so a limit is exact rather than approximated by
// fixed buckets. It holds at most MaxKeys keys and drops expired ones as it goes.
type MemoryStore struct {
	now     func() time.Time
	maxKeys int
	every   time.Duration

	mu        sync.Mutex
	windows   map[string]*slidingWindow
	breakers  map[string]time.Time // open until then, by window key
	lastSweep time.Time
	nextID    uint64
}

// slidingWindow is one key's slots, oldest first.
type slidingWindow struct {
	span  time.Duration
	slots []slot
}

// slot is one reserved send.
type slot struct {
	id uint64
	at time.Time
}

var _ Store = (*MemoryStore)(nil)

// NewMemoryStore returns an empty MemoryStore.
func NewMemoryStore(o MemoryOptions) *MemoryStore {
	s := &MemoryStore{now: o.Now, maxKeys: o.MaxKeys, every: o.SweepInterval,
		windows: make(map[string]*slidingWindow), breakers: make(map[string]time.Time)}
	if s.now == nil {
		s.now = time.Now
	}
	if s.maxKeys <= 0 {
		s.maxKeys = DefaultMaxKeys
	}
	if s.every <= 0 {
		s.every = DefaultSweepInterval
	}
	return s
}

// Reserve implements Store. It fails only with ErrStoreFull, or for a window whose Max or
// Span is not positive.
func (s *MemoryStore) Reserve(_ context.Context, ws []Window) (Reservation, Refusal, error) {
	if err := checkWindows(ws); err != nil {
		return Reservation{}, Refusal{}, err
	}
	now := s.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	if now.Sub(s.lastSweep) >= s.every {
		s.sweep(now)
	}
	for i, w := range ws {
		if until := s.breakers[w.Key]; w.Breaker && until.After(now) {
			return Reservation{}, Refusal{Window: i, Breaker: true, RetryAfter: until.Sub(now)}, nil
		}
	}
	added := 0
	for i, w := range ws {
		sw := s.windows[w.Key]
		if sw == nil {
			added++
			continue
		}
		sw.span = w.Span
		sw.expire(now)
		if n := len(sw.slots); n >= w.Max {
			if w.Breaker {
				s.breakers[w.Key] = now.Add(w.Span)
				return Reservation{}, Refusal{Window: i, Breaker: true, RetryAfter: w.Span}, nil
			}
			// The slot that must expire for one to be free: the Max-th newest.
			return Reservation{}, Refusal{Window: i, RetryAfter: sw.slots[n-w.Max].at.Add(sw.span).Sub(now)}, nil
		}
	}
	if added > 0 && len(s.windows)+added > s.maxKeys {
		s.sweep(now)
		if len(s.windows)+added > s.maxKeys {
			return Reservation{}, Refusal{}, ErrStoreFull
		}
	}
	s.nextID++
	sl := slot{id: s.nextID, at: now}
	r := Reservation{Keys: make([]string, len(ws)), ID: strconv.FormatUint(sl.id, 10)}
	for i, w := range ws {
		r.Keys[i] = w.Key
		sw := s.windows[w.Key]
		if sw == nil {
			sw = &slidingWindow{span: w.Span}
			s.windows[w.Key] = sw
		}
		if n := len(sw.slots); n == 0 || !now.Before(sw.slots[n-1].at) {
			sw.slots = append(sw.slots, sl)
		} else { // the clock went back: keep the slots in order
			j, _ := slices.BinarySearchFunc(sw.slots, now, func(a slot, t time.Time) int { return a.at.Compare(t) })
			sw.slots = slices.Insert(sw.slots, j, sl)
		}
	}
	return r, Refusal{}, nil
}

// checkWindows refuses windows no store can keep.
func checkWindows(ws []Window) error {
	for _, w := range ws {
		if w.Max < 1 || w.Span <= 0 {
			return fmt.Errorf("guard: reserve %q: limit %d and window %v must be positive", w.Key, w.Max, w.Span)
		}
	}
	return nil
}

// Release implements Store; it never fails.
func (s *MemoryStore) Release(_ context.Context, r Reservation) error {
	id, err := strconv.ParseUint(r.ID, 10, 64)
	if err != nil {
		return nil // not one of ours: nothing to give back
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, k := range r.Keys {
		w := s.windows[k]
		if w == nil {
			continue
		}
		w.slots = slices.DeleteFunc(w.slots, func(sl slot) bool { return sl.id == id })
		if len(w.slots) == 0 {
			delete(s.windows, k)
		}
	}
	return nil
}

// Len reports how many keys the store holds.
func (s *MemoryStore) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.windows)
}

// sweep drops every expired slot and every key left without one. s.mu is held.
func (s *MemoryStore) sweep(now time.Time) {
	s.lastSweep = now
	for k, until := range s.breakers {
		if !until.After(now) {
			delete(s.breakers, k)
		}
	}
	for k, w := range s.windows {
		w.expire(now)
		if len(w.slots) == 0 {
			delete(s.windows, k)
		}
	}
}

// expire drops the slots taken a whole window or longer before now.
func (w *slidingWindow) expire(now time.Time) {
	cutoff := now.Add(-w.span)
	i := 0
	for i < len(w.slots) && !w.slots[i].at.After(cutoff) {
		i++
	}
	if i > 0 {
		w.slots = slices.Delete(w.slots, 0, i)
	}
}
