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

// Store keeps the sliding windows of a Guard's limits, the breaker of its global budget, and
// the delivery outcomes of its number ranges and countries with their cool-downs. The Guard
// needs only these three operations, so a store shared by several processes (guardredis:
// sorted sets in Redis) can replace the in-memory one; with a shared Store, the processes'
// limits hold as if they were one. Implementations must be safe for concurrent use.
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
	// Observe records one message's final delivery outcome in the outcome window of each of
	// o.Keys, atomically, and returns each window's Tally, in the order of o.Keys. An outcome
	// whose ID the window holds already is not counted again, and neither is one arriving
	// while the key's cool-down lasts. When a counted outcome leaves a window with at least
	// rule.MinOutcomes outcomes of which more than rule.MaxUndeliveredPPM per million were
	// undelivered, the key's cool-down starts: for rule.Cooldown, a Reserve with a Cooldown
	// window of that key is refused. A window keeps the outcomes of the last rule.Span, at
	// most MaxOutcomesPerWindow of them (the newest). err reports a failure of the store, and
	// then nothing was recorded.
	Observe(ctx context.Context, o Outcome, rule FeedbackRule) ([]Tally, error)
}

// MaxOutcomesPerWindow bounds the outcomes a Store keeps per outcome window: beyond it the
// oldest are dropped, and the share is that of the newest.
const MaxOutcomesPerWindow = 10_000

// Outcome is one message's final delivery outcome, for Store.Observe.
type Outcome struct {
	// Keys name the outcome windows it counts in (its number range's, its country's).
	Keys []string
	// ID tells the message apart, so that a replayed outcome is counted once.
	ID string
	// Undelivered reports that the message never reached the phone.
	Undelivered bool
}

// FeedbackRule says how long outcomes count and when a window trips.
type FeedbackRule struct {
	// Span is how long an outcome counts (positive).
	Span time.Duration
	// MinOutcomes is how many outcomes a window needs before it can trip (at least 1).
	MinOutcomes int
	// MaxUndeliveredPPM is the undelivered share, in parts per million, a window may reach
	// without tripping (1 to 999,999): it trips when the share is above it.
	MaxUndeliveredPPM int
	// Cooldown is how long a tripped key refuses sends (positive).
	Cooldown time.Duration
}

// tripped reports whether a window of outcomes outcomes, undelivered of them undelivered,
// breaks r. Integer arithmetic, so that every Store decides alike.
func (r FeedbackRule) tripped(outcomes, undelivered int) bool {
	return outcomes >= r.MinOutcomes && int64(undelivered)*1_000_000 > int64(r.MaxUndeliveredPPM)*int64(outcomes)
}

// check refuses a rule no store can apply.
func (r FeedbackRule) check() error {
	if r.Span <= 0 || r.Cooldown <= 0 || r.MinOutcomes < 1 || r.MaxUndeliveredPPM < 1 || r.MaxUndeliveredPPM >= 1_000_000 {
		return fmt.Errorf("guard: observe: rule %+v out of range", r)
	}
	return nil
}

// Tally is an outcome window after Store.Observe.
type Tally struct {
	// Outcomes and Undelivered count the outcomes the window holds, and how many of them were
	// undelivered.
	Outcomes, Undelivered int
	// Counted reports that the outcome was new to the window and counted.
	Counted bool
	// Tripped reports that this outcome started the key's cool-down.
	Tripped bool
	// CooldownLeft is how long the key's cool-down still lasts (0: none).
	CooldownLeft time.Duration
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
	// Cooldown makes the window a check that takes no slot: Reserve refuses while a cool-down
	// Observe started on Key lasts, with RetryAfter the rest of it. Max, Span and Breaker are
	// then ignored.
	Cooldown bool
}

// Reservation is the slots one granted Store.Reserve took, one in each of its windows.
type Reservation struct {
	// Keys are the windows the slots belong to (Cooldown windows take none).
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

// ErrStoreFull is returned by MemoryStore.Reserve (and Observe) when a new key would exceed MaxKeys even
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
	outcomes  map[string]*outcomeWindow
	cooldowns map[string]time.Time // refusing until then, by outcome key
	lastSweep time.Time
	nextID    uint64
}

// outcomeWindow is one key's delivery outcomes, oldest first.
type outcomeWindow struct {
	span        time.Duration
	entries     []outcomeEntry
	ids         map[string]bool
	undelivered int
}

// outcomeEntry is one message's outcome.
type outcomeEntry struct {
	id          string
	at          time.Time
	undelivered bool
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
		windows: make(map[string]*slidingWindow), breakers: make(map[string]time.Time),
		outcomes: make(map[string]*outcomeWindow), cooldowns: make(map[string]time.Time)}
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
		if until := s.cooldowns[w.Key]; w.Cooldown && until.After(now) {
			return Reservation{}, Refusal{Window: i, RetryAfter: until.Sub(now)}, nil
		}
		if until := s.breakers[w.Key]; w.Breaker && !w.Cooldown && until.After(now) {
			return Reservation{}, Refusal{Window: i, Breaker: true, RetryAfter: until.Sub(now)}, nil
		}
	}
	added := 0
	for i, w := range ws {
		if w.Cooldown {
			continue
		}
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
	if added > 0 && s.keys()+added > s.maxKeys {
		s.sweep(now)
		if s.keys()+added > s.maxKeys {
			return Reservation{}, Refusal{}, ErrStoreFull
		}
	}
	s.nextID++
	sl := slot{id: s.nextID, at: now}
	r := Reservation{Keys: make([]string, 0, len(ws)), ID: strconv.FormatUint(sl.id, 10)}
	for _, w := range ws {
		if w.Cooldown {
			continue
		}
		r.Keys = append(r.Keys, w.Key)
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
		if !w.Cooldown && (w.Max < 1 || w.Span <= 0) {
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

// Observe implements Store. It fails only with ErrStoreFull, or for a rule out of range.
func (s *MemoryStore) Observe(_ context.Context, o Outcome, rule FeedbackRule) ([]Tally, error) {
	if err := rule.check(); err != nil {
		return nil, err
	}
	now := s.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	if now.Sub(s.lastSweep) >= s.every {
		s.sweep(now)
	}
	added := 0
	for _, k := range o.Keys {
		if s.outcomes[k] == nil {
			added++
		}
	}
	if added > 0 && s.keys()+added > s.maxKeys {
		s.sweep(now)
		if s.keys()+added > s.maxKeys {
			return nil, fmt.Errorf("guard: observe: %w", ErrStoreFull)
		}
	}
	tallies := make([]Tally, len(o.Keys))
	for i, k := range o.Keys {
		ow := s.outcomes[k]
		if ow == nil {
			ow = &outcomeWindow{ids: map[string]bool{}}
			s.outcomes[k] = ow
		}
		ow.span = rule.Span
		ow.expire(now)
		t := &tallies[i]
		cooling := s.cooldowns[k].After(now)
		if !cooling && !ow.ids[o.ID] {
			ow.add(outcomeEntry{id: o.ID, at: now, undelivered: o.Undelivered})
			t.Counted = true
		}
		t.Outcomes, t.Undelivered = len(ow.entries), ow.undelivered
		if t.Counted && rule.tripped(t.Outcomes, t.Undelivered) {
			s.cooldowns[k] = now.Add(rule.Cooldown)
			t.Tripped, cooling = true, true
		}
		if cooling {
			t.CooldownLeft = s.cooldowns[k].Sub(now)
		}
		if len(ow.entries) == 0 {
			delete(s.outcomes, k)
		}
	}
	return tallies, nil
}

// add appends e, dropping the oldest entry beyond MaxOutcomesPerWindow.
func (w *outcomeWindow) add(e outcomeEntry) {
	if n := len(w.entries); n > 0 && e.at.Before(w.entries[n-1].at) {
		e.at = w.entries[n-1].at // the clock went back: keep the entries in order
	}
	w.entries = append(w.entries, e)
	w.ids[e.id] = true
	if e.undelivered {
		w.undelivered++
	}
	if len(w.entries) > MaxOutcomesPerWindow {
		w.drop(1)
	}
}

// drop removes the n oldest entries.
func (w *outcomeWindow) drop(n int) {
	for _, e := range w.entries[:n] {
		delete(w.ids, e.id)
		if e.undelivered {
			w.undelivered--
		}
	}
	w.entries = slices.Delete(w.entries, 0, n)
}

// expire drops the outcomes recorded a whole span or longer before now.
func (w *outcomeWindow) expire(now time.Time) {
	cutoff := now.Add(-w.span)
	i := 0
	for i < len(w.entries) && !w.entries[i].at.After(cutoff) {
		i++
	}
	if i > 0 {
		w.drop(i)
	}
}

// Len reports how many keys the store holds: windows of slots and of outcomes.
func (s *MemoryStore) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.keys()
}

// keys is Len with s.mu held.
func (s *MemoryStore) keys() int { return len(s.windows) + len(s.outcomes) }

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
	for k, until := range s.cooldowns {
		if !until.After(now) {
			delete(s.cooldowns, k)
		}
	}
	for k, w := range s.outcomes {
		w.expire(now)
		if len(w.entries) == 0 {
			delete(s.outcomes, k)
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
