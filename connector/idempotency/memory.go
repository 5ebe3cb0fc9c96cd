package idempotency

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/sms-connector/sms-connector/connector"
)

// Costs the store counts against Options.MaxBytes, besides the bytes of the strings it keeps.
// They are what the Go runtime allocates for each, rounded up; BenchmarkStore100k checks the
// total against the heap.
const (
	// entryCost is one key: its entry, its channel, its map slot and its queue slot.
	entryCost = 400
	// receiptCost is a stored receipt's struct.
	receiptCost = 112
	// errorCost is a stored error's structs (a connector.Error and its wrapped causes).
	errorCost = 256
	// violationCost is each of a stored error's violations.
	violationCost = 32
)

// minRetryAfter is the least RetryAfter of a refusal because the store is full.
const minRetryAfter = time.Second

// shrinkMin is the peak size under which the store never reallocates its map and queue: they
// are too small for it to matter.
const shrinkMin = 1024

// memStore is the Store in this process's memory, bounded as the package documentation says.
type memStore struct {
	max      int
	maxBytes int64
	now      func() time.Time

	mu      sync.Mutex
	entries map[[sha256.Size]byte]*entry
	peak    int         // the most entries since the map was last allocated
	bytes   int64       // what the entries take, as counted against maxBytes
	stored  []storedKey // answered entries in the order they expire
	head    int         // stored[:head] are gone
}

// storedKey is an answered entry in the expiry queue.
type storedKey struct {
	key [sha256.Size]byte
	e   *entry
}

// entry is one key's send. Its answer fields are written once, before done is closed.
type entry struct {
	request [sha256.Size]byte // fingerprint of the request, to detect a reused key
	done    chan struct{}
	joined  int // duplicates that found the entry (guarded by memStore.mu; for tests)

	outcome Outcome
	answer  Answer
	expires time.Time
	size    int64 // what the entry takes, as counted in memStore.bytes (guarded by memStore.mu)
}

var _ Store = (*memStore)(nil)

// newMemStore returns a memory store; zero values take the defaults.
func newMemStore(maxEntries int, maxBytes int64, now func() time.Time) *memStore {
	s := &memStore{max: maxEntries, maxBytes: maxBytes, now: now, entries: make(map[[sha256.Size]byte]*entry)}
	if s.max == 0 {
		s.max = DefaultMaxEntries
	}
	if s.maxBytes == 0 {
		s.maxBytes = DefaultMaxBytes
	}
	if s.now == nil {
		s.now = time.Now
	}
	return s
}

// Claim finds the entry of k, or makes one when there is none, in which case the caller
// leads. An entry found, answered or not, is returned InFlight: Wait returns at once when
// it is answered.
func (s *memStore) Claim(_ context.Context, k Key) (Ticket, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	s.expire(now)
	if e := s.entries[k.ID]; e != nil {
		if e.request != k.Request {
			return Ticket{}, ErrConflict
		}
		e.joined++
		return Ticket{Key: k, State: InFlight, Claim: e}, nil
	}
	if len(s.entries) >= s.max || s.bytes+entryCost > s.maxBytes {
		return Ticket{}, s.full(now)
	}
	e := &entry{request: k.Request, done: make(chan struct{}), size: entryCost}
	s.entries[k.ID] = e
	s.bytes += e.size
	s.peak = max(s.peak, len(s.entries))
	return Ticket{Key: k, State: Lead, Claim: e}, nil
}

// Wait waits for the entry t found to be settled.
func (s *memStore) Wait(ctx context.Context, t Ticket) (*Answer, error) {
	e := t.Claim.(*entry)
	select {
	case <-e.done:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	if e.outcome == Abandoned {
		return nil, nil
	}
	a := e.answer
	return &a, nil
}

// full is the refusal of a new key when the store is full: retry when the oldest stored
// answer expires, or after minRetryAfter when every key is in flight. s.mu is held.
func (s *memStore) full(now time.Time) error {
	wait := minRetryAfter
	if s.head < len(s.stored) {
		wait = max(wait, s.stored[s.head].e.expires.Sub(now))
	}
	return &connector.Error{
		Reason: connector.ReasonRateLimited,
		Message: fmt.Sprintf("the idempotency store is full (%d keys, %d bytes remembered; at most %d keys, %d bytes); retry after %v, when the oldest answer expires",
			len(s.entries), s.bytes, s.max, s.maxBytes, wait.Round(time.Millisecond)),
		RetryAfter: wait,
	}
}

// Settle records the answer of t's entry and wakes its waiters.
func (s *memStore) Settle(_ context.Context, t Ticket, o Outcome, a Answer) error {
	e := t.Claim.(*entry)
	e.answer = a
	e.outcome = o
	var size int64
	if o == Kept {
		size = answerSize(a)
	}
	s.mu.Lock()
	if o == Kept {
		e.expires = s.now().Add(t.Key.Window)
		e.size += size
		s.bytes += size
		s.stored = append(s.stored, storedKey{t.Key.ID, e})
	} else {
		s.forget(t.Key.ID, e)
		s.shrink()
	}
	s.mu.Unlock()
	close(e.done)
	return nil
}

// answerSize is what a stored answer takes besides its entry, as counted against MaxBytes.
// An error's causes are counted by the length of its text.
func answerSize(a Answer) int64 {
	var n int
	if r := a.Receipt; r != nil {
		n += receiptCost + len(r.MessageID) + len(r.Status) + len(r.Encoding) + len(r.To) + len(r.Sender)
	}
	if err := a.Err; err != nil {
		n += errorCost + len(err.Error())
		var ce *connector.Error
		if errors.As(err, &ce) {
			n += len(ce.Provider) + len(ce.MoreInfo)
			for _, v := range ce.Violations {
				n += violationCost + len(v.Field) + len(v.Description)
			}
		}
	}
	return int64(n)
}

// expire forgets the stored answers whose window has passed. s.mu is held.
func (s *memStore) expire(now time.Time) {
	n := 0
	for s.head < len(s.stored) && !now.Before(s.stored[s.head].e.expires) {
		k := s.stored[s.head]
		s.stored[s.head] = storedKey{}
		s.head++
		s.forget(k.key, k.e)
		n++
	}
	if n == 0 {
		return
	}
	if s.head > len(s.stored)/2 {
		// A new queue, not the old one's array: a queue that once held a peak keeps its
		// capacity otherwise.
		rest := s.stored[s.head:]
		s.stored = make([]storedKey, len(rest))
		copy(s.stored, rest)
		s.head = 0
	}
	s.shrink()
}

// forget drops e, the entry of key, and gives back what it took. s.mu is held.
func (s *memStore) forget(key [sha256.Size]byte, e *entry) {
	if s.entries[key] == e {
		delete(s.entries, key)
		s.bytes -= e.size
	}
}

// shrink moves the entries to a new map once they are well below their peak: a Go map keeps
// the memory of the most entries it held. s.mu is held.
func (s *memStore) shrink() {
	if s.peak < shrinkMin || len(s.entries) > s.peak/4 {
		return
	}
	m := make(map[[sha256.Size]byte]*entry, len(s.entries))
	for k, e := range s.entries {
		m[k] = e
	}
	s.entries, s.peak = m, len(m)
}

// Len reports how many keys are remembered, in flight or answered.
func (s *memStore) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.entries)
}
