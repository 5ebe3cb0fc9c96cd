package deliverystatus

import (
	"container/list"
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/sms-connector/sms-connector/connector"
)

// DefaultMaxEntries bounds a memory Store unless MemoryOptions say otherwise: a record is a few
// hundred bytes, so 100,000 records (a busy week of one process's sends) take some tens of MiB.
const DefaultMaxEntries = 100_000

// MemoryOptions configure NewMemory; zero values take the defaults.
type MemoryOptions struct {
	// TTL is how long a record is kept after its last change (default DefaultTTL).
	TTL time.Duration
	// MaxEntries bounds the records kept (default DefaultMaxEntries). When full, the record
	// changed longest ago is dropped for a new one: records are a cache of what the vendor
	// knows, so losing one costs a fetch, never a wrong answer.
	MaxEntries int
	// Now is the clock (default time.Now).
	Now func() time.Time
}

// Memory is a Store in this process's memory: each replica has its own.
type Memory struct {
	ttl time.Duration
	max int
	now func() time.Time

	mu      sync.Mutex
	byID    map[string]*list.Element // of *memEntry
	byWrite *list.List               // least recently changed first
}

// memEntry is one record and when it expires.
type memEntry struct {
	rec     Record
	expires time.Time
}

var _ Store = (*Memory)(nil)

// NewMemory returns an empty memory Store.
func NewMemory(o MemoryOptions) (*Memory, error) {
	if o.TTL < 0 || o.MaxEntries < 0 {
		return nil, fmt.Errorf("deliverystatus: negative option in %+v", o)
	}
	m := &Memory{ttl: o.TTL, max: o.MaxEntries, now: o.Now, byID: map[string]*list.Element{}, byWrite: list.New()}
	if m.ttl == 0 {
		m.ttl = DefaultTTL
	}
	if m.max == 0 {
		m.max = DefaultMaxEntries
	}
	if m.now == nil {
		m.now = time.Now
	}
	return m, nil
}

// Len returns how many records are kept, expired ones not yet dropped included.
func (m *Memory) Len() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.byWrite.Len()
}

// Get returns the record of messageID, or nil.
func (m *Memory) Get(_ context.Context, messageID string) (*Record, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	e, ok := m.byID[messageID]
	if !ok {
		return nil, nil
	}
	me := e.Value.(*memEntry)
	if !m.now().Before(me.expires) {
		m.remove(e)
		return nil, nil
	}
	rec := me.rec
	return &rec, nil
}

// Merge folds r into its message's record; see Store.
func (m *Memory) Merge(_ context.Context, r Record) (Merged, error) {
	id := r.Status.MessageID
	if err := CheckID(id); err != nil {
		return Merged{}, err
	}
	r.Status.To = ""
	now := m.now()
	m.mu.Lock()
	defer m.mu.Unlock()
	var old *Record
	if e, ok := m.byID[id]; ok {
		me := e.Value.(*memEntry)
		if now.Before(me.expires) {
			old = &me.rec
		} else {
			m.remove(e)
		}
	}
	rec, res := Fold(old, r)
	if e, ok := m.byID[id]; ok {
		e.Value.(*memEntry).rec, e.Value.(*memEntry).expires = rec, now.Add(m.ttl)
		m.byWrite.MoveToBack(e)
	} else {
		for m.byWrite.Len() >= m.max {
			m.remove(m.byWrite.Front())
		}
		m.byID[id] = m.byWrite.PushBack(&memEntry{rec: rec, expires: now.Add(m.ttl)})
	}
	return Merged{Record: rec, Changed: res == Advanced, BecameFinal: res == Advanced && rec.Status.State.Final()}, nil
}

// remove drops e.
func (m *Memory) remove(e *list.Element) {
	delete(m.byID, e.Value.(*memEntry).rec.Status.MessageID)
	m.byWrite.Remove(e)
}

// FoldResult says what Fold did with a report.
type FoldResult int

// The outcomes of Fold.
const (
	// Ignored: the report's state ranks below the record's, or is another final state.
	Ignored FoldResult = iota
	// Confirmed: the report has the record's state; it filled in missing fields only.
	Confirmed
	// Advanced: the report's state became the record's (or there was no record).
	Advanced
)

// Fold is the merge rule every Store applies (statusredis in Lua, the same way): it returns the
// record old becomes with the report r (old may be nil) and what happened. Whatever the state,
// a record without a send time takes r's: the send's own report may arrive after a vendor's.
func Fold(old *Record, r Record) (Record, FoldResult) {
	if old == nil {
		return r, Advanced
	}
	nr, or := r.Status.State.Rank(), old.Status.State.Rank()
	if nr < or || (nr == or && r.Status.State != old.Status.State) {
		rec := *old
		if rec.SentAt.IsZero() {
			rec.SentAt = r.SentAt // the send's time, whenever its report comes
		}
		return rec, Ignored
	}
	rec, res := *old, Confirmed
	if nr > or {
		res = Advanced
		rec.Status.State, rec.Status.VendorStatus = r.Status.State, r.Status.VendorStatus
		rec.Status.Reason, rec.Status.VendorCode = r.Status.Reason, r.Status.VendorCode
		rec.Status.UpdatedAt = r.Status.UpdatedAt
	}
	if r.Status.Segments > 0 {
		rec.Status.Segments = r.Status.Segments
	}
	if r.Status.Price != "" {
		rec.Status.Price, rec.Status.PriceUnit = r.Status.Price, r.Status.PriceUnit
	}
	if rec.SentAt.IsZero() {
		rec.SentAt = r.SentAt
	}
	if !r.CheckedAt.IsZero() {
		rec.CheckedAt = r.CheckedAt
	}
	return rec, res
}

// errBadID is the error of a message id a Store does not keep.
var errBadID = connector.Errorf(connector.ReasonInvalidRequest, "a message id is 1 to %d characters", MaxMessageIDLength)

// CheckID refuses an empty or overlong message id (INVALID_REQUEST); every Store calls it.
func CheckID(id string) error {
	if id == "" || len(id) > MaxMessageIDLength {
		return errBadID
	}
	return nil
}
