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

// Store keeps the sliding windows of a Guard's limits. The Guard needs only these two
// operations, so a store shared by several processes (Redis: a sorted set per key, scored by
// time) can replace the in-memory one. Implementations must be safe for concurrent use.
type Store interface {
	// Reserve takes one slot of key's window, which holds at most limit slots taken within the
	// last window. When a slot is free it returns the Reservation and a zero retryAfter;
	// when none is, a zero Reservation and how long until one frees (positive). err reports a
	// failure of the store itself. Keys carry no secret and no phone number in clear.
	Reserve(ctx context.Context, key string, limit int, window time.Duration) (r Reservation, retryAfter time.Duration, err error)
	// Release gives a reserved slot back, as if it had never been taken. Releasing a slot
	// that has expired or was released already does nothing.
	Release(ctx context.Context, r Reservation) error
}

// Reservation is one slot taken by Store.Reserve.
type Reservation struct {
	// Key is the window the slot belongs to.
	Key string
	// ID tells the slot apart from the key's other slots; the store chooses it.
	ID string
}

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
	s := &MemoryStore{now: o.Now, maxKeys: o.MaxKeys, every: o.SweepInterval, windows: make(map[string]*slidingWindow)}
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

// Reserve implements Store. It fails only with ErrStoreFull, or for a limit or window that is
// not positive.
func (s *MemoryStore) Reserve(_ context.Context, key string, limit int, window time.Duration) (Reservation, time.Duration, error) {
	if limit < 1 || window <= 0 {
		return Reservation{}, 0, fmt.Errorf("guard: reserve %q: limit %d and window %v must be positive", key, limit, window)
	}
	now := s.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	if now.Sub(s.lastSweep) >= s.every {
		s.sweep(now)
	}
	w := s.windows[key]
	if w == nil {
		if len(s.windows) >= s.maxKeys {
			s.sweep(now)
			if len(s.windows) >= s.maxKeys {
				return Reservation{}, 0, ErrStoreFull
			}
		}
		w = &slidingWindow{}
		s.windows[key] = w
	}
	w.span = window
	w.expire(now)
	if n := len(w.slots); n >= limit {
		// The slot that must expire for one to be free: the limit-th newest.
		return Reservation{}, w.slots[n-limit].at.Add(w.span).Sub(now), nil
	}
	s.nextID++
	sl := slot{id: s.nextID, at: now}
	if n := len(w.slots); n == 0 || !now.Before(w.slots[n-1].at) {
		w.slots = append(w.slots, sl)
	} else { // the clock went back: keep the slots in order
		i, _ := slices.BinarySearchFunc(w.slots, now, func(a slot, t time.Time) int { return a.at.Compare(t) })
		w.slots = slices.Insert(w.slots, i, sl)
	}
	return Reservation{Key: key, ID: strconv.FormatUint(sl.id, 10)}, 0, nil
}

// Release implements Store; it never fails.
func (s *MemoryStore) Release(_ context.Context, r Reservation) error {
	id, err := strconv.ParseUint(r.ID, 10, 64)
	if err != nil {
		return nil // not one of ours: nothing to give back
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	w := s.windows[r.Key]
	if w == nil {
		return nil
	}
	w.slots = slices.DeleteFunc(w.slots, func(sl slot) bool { return sl.id == id })
	if len(w.slots) == 0 {
		delete(s.windows, r.Key)
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
