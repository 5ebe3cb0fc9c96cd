// Package idempotency makes sends with an idempotency key happen at most once. It wraps any
// connector.SmsConnector, so every vendor inherits it; Twilio itself has no idempotency key for
// message creation.
//
// Within Options.Window of the first send's answer, a message with the same IdempotencyKey,
// from the same tenant, is not sent again:
//   - duplicates that arrive while the first send is in flight wait for it (each within its
//     own context) and get its answer;
//   - later duplicates get the stored answer: the receipt, or the final error.
//
// What is stored, and why:
//   - a receipt, and every error after which the SMS may exist (PROVIDER_OUTCOME_UNKNOWN, a
//     PROVIDER_TIMEOUT of the connector's own timeout, PROVIDER_INVALID_RESPONSE, INTERNAL):
//     sending again could give the user a second code, which is what the key is there to
//     prevent; the caller that wants to risk it sends with a new key;
//   - every error that a retry of the same request would meet again (INVALID_CONFIG,
//     TEMPLATE_NOT_FOUND, RECIPIENT_OPTED_OUT, COUNTRY_NOT_PERMITTED, ...).
//
// What is not stored:
//   - errors that prove nothing was sent and that waiting cures (RATE_LIMITED,
//     PROVIDER_RATE_LIMITED, PROVIDER_UNAVAILABLE, PROVIDER_QUEUE_FULL, OVERLOADED): concurrent duplicates
//     get the same error, and the next duplicate tries again, as its RetryAfter invites;
//   - the end of the first caller's own context (it cancelled or its deadline passed, whatever
//     the reason it returned): that caller has gone and never saw an answer, so duplicates
//     that were waiting, and later ones, try again. The abandoned attempt may still have
//     created the SMS, so this may send a second one; storing the cancellation instead would
//     make the key useless for the whole window to a user who is still waiting for a code.
//
// Keys are scoped by tenant: an entry is found by a SHA-256 of the message's Config (the
// tenant's own credentials and settings, canonicalised, never kept in clear) and of the key.
// The same key from the same tenant with a different recipient, usage type or payload is
// refused as INVALID_REQUEST rather than answered with another message's receipt. ClientIP is
// not part of the request's identity: a retry may come through another address.
//
// Memory is bounded: at most Options.MaxEntries keys, in flight or answered, taking at most
// Options.MaxBytes as the store counts them (a fixed cost per key, for the entry, its map and
// queue slots, plus the strings of its stored receipt or error; refused sends whose errors are
// stored count like any other). When a new key would go over either bound, its send is refused
// with RATE_LIMITED and a RetryAfter saying when the oldest stored answer expires (at least a
// second): no stored answer is forgotten before its window, since forgetting one early would
// let a retry send a second SMS. Duplicates of keys already remembered are answered as usual.
// Answers whose window has passed are dropped at the next send with a key, and the store's
// map and queue are reallocated once they have shrunk well below their peak, so that the
// memory goes back to the Go runtime.
//
// Where the Connector sits among the other decorators is written in sdk.Defend.
package idempotency

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"sync"
	"time"

	"github.com/sms-connector/sms-connector/connector"
)

// Defaults of Options.
const (
	// DefaultWindow is how long an answer is kept: longer than a platform's retries of one
	// send, and than a verification code's usual lifetime.
	DefaultWindow = 10 * time.Minute
	// DefaultMaxEntries bounds the keys remembered at once: a sustained 166 sends with
	// distinct keys per second over the default window.
	DefaultMaxEntries = 100_000
	// DefaultMaxBytes bounds the memory the remembered keys take, as the store counts it:
	// DefaultMaxEntries receipts fit, with room for longer errors.
	DefaultMaxBytes = 64 << 20
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

// Options configure a Connector; zero values take the defaults.
type Options struct {
	// Window is how long after its send's answer a key is remembered (default DefaultWindow).
	Window time.Duration
	// MaxEntries bounds how many keys are remembered, in flight or answered (default
	// DefaultMaxEntries). A new key beyond it is refused with RATE_LIMITED; see the package
	// documentation.
	MaxEntries int
	// MaxBytes bounds the memory the remembered keys take, as the store counts it (default
	// DefaultMaxBytes): a fixed cost per key plus its stored answer's strings. It is checked
	// when a new key arrives, which is refused like one beyond MaxEntries; the answers of the
	// sends in flight then may take the store over it by their own size. The process's heap
	// holds more than this count: the garbage collector's headroom (GOGC) comes on top.
	MaxBytes int64
	// Now is the clock (default time.Now); tests pass a fake one.
	Now func() time.Time
}

// Connector is a connector.SmsConnector that sends each idempotency key at most once per
// window through another one. It is safe for concurrent use.
type Connector struct {
	connector.Forward // ValidateConfig and Metadata are the wrapped connector's
	window            time.Duration
	max               int
	maxBytes          int64
	now               func() time.Time

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

// outcome is what became of an entry's send.
type outcome int

const (
	inFlight  outcome = iota
	kept              // answer stored for the window
	shared            // answer given to the waiting duplicates only
	abandoned         // the first caller went away: the waiting duplicates try again
)

// entry is one key's send. Its answer fields are written once, before done is closed.
type entry struct {
	request [sha256.Size]byte // fingerprint of the request, to detect a reused key
	done    chan struct{}
	joined  int // duplicates that found the entry (guarded by Connector.mu; for tests)

	outcome outcome
	receipt *connector.Receipt
	err     error
	expires time.Time
	size    int64 // what the entry takes, as counted in Connector.bytes (guarded by Connector.mu)
}

var _ connector.SmsConnector = (*Connector)(nil)

// New returns a Connector sending through next. It fails for a nil next or negative options.
func New(next connector.SmsConnector, o Options) (*Connector, error) {
	switch {
	case next == nil:
		return nil, errors.New("idempotency: no connector to wrap")
	case o.Window < 0:
		return nil, fmt.Errorf("idempotency: negative Window %v", o.Window)
	case o.MaxEntries < 0:
		return nil, fmt.Errorf("idempotency: negative MaxEntries %d", o.MaxEntries)
	case o.MaxBytes < 0:
		return nil, fmt.Errorf("idempotency: negative MaxBytes %d", o.MaxBytes)
	}
	c := &Connector{Forward: connector.Forward{Next: next}, window: o.Window, max: o.MaxEntries, maxBytes: o.MaxBytes, now: o.Now, entries: make(map[[sha256.Size]byte]*entry)}
	if c.window == 0 {
		c.window = DefaultWindow
	}
	if c.max == 0 {
		c.max = DefaultMaxEntries
	}
	if c.maxBytes == 0 {
		c.maxBytes = DefaultMaxBytes
	}
	if c.now == nil {
		c.now = time.Now
	}
	return c, nil
}

// Send sends msg through the wrapped connector unless a send with the same idempotency key
// and tenant is in flight or was answered within the window; see the package documentation.
// A message without a key is sent as is. Besides the wrapped connector's errors it returns
// INVALID_REQUEST for a key reused with a different request, CANCELLED or PROVIDER_TIMEOUT
// when ctx ends while waiting for a concurrent duplicate, and RATE_LIMITED for a new key when
// the store is full (MaxEntries or MaxBytes).
func (c *Connector) Send(ctx context.Context, msg *connector.Message) (*connector.Receipt, error) {
	if msg == nil || msg.IdempotencyKey == "" {
		return c.Next.Send(ctx, msg)
	}
	key, request := scopedKey(msg), fingerprint(msg)
	for {
		e, lead, err := c.join(key, request)
		if err != nil {
			return nil, err
		}
		if lead {
			return c.lead(ctx, key, e, msg)
		}
		select {
		case <-e.done:
		case <-ctx.Done():
			return nil, waitError(ctx.Err())
		}
		if e.outcome != abandoned {
			return answer(e)
		}
		// The first caller went away without an answer: try again, perhaps as the leader,
		// unless this caller has gone too.
		if err := ctx.Err(); err != nil {
			return nil, waitError(err)
		}
	}
}

// join finds the entry of key, or makes one when there is none, in which case the caller
// leads: it sends and settles the entry.
func (c *Connector) join(key, request [sha256.Size]byte) (e *entry, lead bool, err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := c.now()
	c.expire(now)
	if e := c.entries[key]; e != nil {
		if e.request != request {
			return nil, false, &connector.Error{
				Reason:  connector.ReasonInvalidRequest,
				Message: "idempotency key reused with a different request: the recipient, usage type or payload differs from the send it identifies",
				Violations: []connector.Violation{{Field: "idempotency_key",
					Description: "was used within the idempotency window for a different request; use a new key for a new message"}},
			}
		}
		e.joined++
		return e, false, nil
	}
	if len(c.entries) >= c.max || c.bytes+entryCost > c.maxBytes {
		return nil, false, c.full(now)
	}
	e = &entry{request: request, done: make(chan struct{}), size: entryCost}
	c.entries[key] = e
	c.bytes += e.size
	c.peak = max(c.peak, len(c.entries))
	return e, true, nil
}

// full is the refusal of a new key when the store is full: retry when the oldest stored
// answer expires, or after minRetryAfter when every key is in flight. c.mu is held.
func (c *Connector) full(now time.Time) error {
	wait := minRetryAfter
	if c.head < len(c.stored) {
		wait = max(wait, c.stored[c.head].e.expires.Sub(now))
	}
	return &connector.Error{
		Reason: connector.ReasonRateLimited,
		Message: fmt.Sprintf("the idempotency store is full (%d keys, %d bytes remembered; at most %d keys, %d bytes); retry after %v, when the oldest answer expires",
			len(c.entries), c.bytes, c.max, c.maxBytes, wait.Round(time.Millisecond)),
		RetryAfter: wait,
	}
}

// lead sends msg for the entry e of key and settles it. If the wrapped connector panics, the
// entry is abandoned (waiters try again) before the panic goes on.
func (c *Connector) lead(ctx context.Context, key [sha256.Size]byte, e *entry, msg *connector.Message) (r *connector.Receipt, err error) {
	settled := false
	defer func() {
		if !settled {
			c.settle(key, e, abandoned, nil, nil)
		}
	}()
	r, err = c.Next.Send(ctx, msg)
	c.settle(key, e, outcomeOf(ctx, err), r, err)
	settled = true
	return r, err
}

// settle records e's answer and wakes its waiters.
func (c *Connector) settle(key [sha256.Size]byte, e *entry, o outcome, r *connector.Receipt, err error) {
	if r != nil {
		cp := *r
		e.receipt = &cp
	}
	e.err = err
	e.outcome = o
	var size int64
	if o == kept {
		size = answerSize(e.receipt, err)
	}
	c.mu.Lock()
	if o == kept {
		e.expires = c.now().Add(c.window)
		e.size += size
		c.bytes += size
		c.stored = append(c.stored, storedKey{key, e})
	} else {
		c.forget(key, e)
		c.shrink()
	}
	c.mu.Unlock()
	close(e.done)
}

// answerSize is what a stored answer takes besides its entry, as counted against MaxBytes.
// An error's causes are counted by the length of its text.
func answerSize(r *connector.Receipt, err error) int64 {
	var n int
	if r != nil {
		n += receiptCost + len(r.MessageID) + len(r.Status) + len(r.Encoding) + len(r.To) + len(r.Sender)
	}
	if err != nil {
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

// outcomeOf decides what becomes of a send's answer; see the package documentation.
func outcomeOf(ctx context.Context, err error) outcome {
	if err == nil {
		return kept
	}
	if ctx.Err() != nil || connector.ReasonOf(err) == connector.ReasonCancelled {
		return abandoned
	}
	switch connector.ReasonOf(err) {
	case connector.ReasonRateLimited, connector.ReasonProviderRateLimited,
		connector.ReasonProviderUnavailable, connector.ReasonProviderQueueFull, connector.ReasonOverloaded:
		return shared
	}
	return kept
}

// answer returns a copy of e's answer, so that no caller can change another's.
func answer(e *entry) (*connector.Receipt, error) {
	var r *connector.Receipt
	if e.receipt != nil {
		cp := *e.receipt
		r = &cp
	}
	var ce *connector.Error
	if e.err != nil && errors.As(e.err, &ce) && ce == e.err {
		cp := *ce
		return r, &cp
	}
	return r, e.err
}

// waitError is the error of a duplicate whose context ended while it waited.
func waitError(ctxErr error) error {
	e := &connector.Error{Err: fmt.Errorf("idempotency: waiting for a concurrent send with the same key: %w", ctxErr)}
	if errors.Is(ctxErr, context.Canceled) {
		e.Reason, e.Message = connector.ReasonCancelled, "the request was cancelled while a concurrent send with the same idempotency key was in flight; that send may still complete"
	} else {
		e.Reason, e.Message = connector.ReasonProviderTimeout, "the request's deadline passed while a concurrent send with the same idempotency key was in flight; that send may still complete"
	}
	return e
}

// expire forgets the stored answers whose window has passed. c.mu is held.
func (c *Connector) expire(now time.Time) {
	n := 0
	for c.head < len(c.stored) && !now.Before(c.stored[c.head].e.expires) {
		s := c.stored[c.head]
		c.stored[c.head] = storedKey{}
		c.head++
		c.forget(s.key, s.e)
		n++
	}
	if n == 0 {
		return
	}
	if c.head > len(c.stored)/2 {
		// A new queue, not the old one's array: a queue that once held a peak keeps its
		// capacity otherwise.
		rest := c.stored[c.head:]
		c.stored = make([]storedKey, len(rest))
		copy(c.stored, rest)
		c.head = 0
	}
	c.shrink()
}

// forget drops e, the entry of key, and gives back what it took. c.mu is held.
func (c *Connector) forget(key [sha256.Size]byte, e *entry) {
	if c.entries[key] == e {
		delete(c.entries, key)
		c.bytes -= e.size
	}
}

// shrink moves the entries to a new map once they are well below their peak: a Go map keeps
// the memory of the most entries it held. c.mu is held.
func (c *Connector) shrink() {
	if c.peak < shrinkMin || len(c.entries) > c.peak/4 {
		return
	}
	m := make(map[[sha256.Size]byte]*entry, len(c.entries))
	for k, e := range c.entries {
		m[k] = e
	}
	c.entries, c.peak = m, len(m)
}

// Len reports how many keys are remembered, in flight or answered.
func (c *Connector) Len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.entries)
}

// scopedKey is the entry key of msg: one SHA-256 of its tenant (its Config, canonicalised) and
// its idempotency key.
func scopedKey(msg *connector.Message) [sha256.Size]byte {
	h := sha256.New()
	writeField(h, canonicalJSON(msg.Config))
	writeField(h, []byte(msg.IdempotencyKey))
	var k [sha256.Size]byte
	h.Sum(k[:0])
	return k
}

// fingerprint identifies what msg asks for: recipient, usage type and payload (code, locale,
// variables, link, preference list of locales).
func fingerprint(msg *connector.Message) [sha256.Size]byte {
	to := msg.To
	if n, err := connector.NormalizePhone(to); err == nil {
		to = n
	}
	vars, err := json.Marshal(msg.Payload.Variables) // maps marshal with sorted keys
	if err != nil {
		vars = fmt.Appendf(nil, "%v", msg.Payload.Variables) // not JSON-like; %v sorts map keys too
	}
	h := sha256.New()
	for _, field := range [][]byte{[]byte(to), []byte(msg.UsageType), []byte(msg.Payload.Code), []byte(msg.Payload.Locale), vars} {
		writeField(h, field)
	}
	// The link and the preference list, each after a label, and only when present: a message
	// without them keeps the fingerprint it has always had, so a shared store's claims match
	// across a rolling upgrade.
	if msg.Payload.Link != "" {
		writeField(h, []byte("link"))
		writeField(h, []byte(msg.Payload.Link))
	}
	if len(msg.Payload.Locales) > 0 {
		writeField(h, []byte("ui_locales"))
		for _, l := range msg.Payload.Locales {
			writeField(h, []byte(l))
		}
	}
	var k [sha256.Size]byte
	h.Sum(k[:0])
	return k
}

// writeField writes b to h with its length first, so that fields cannot run into each other.
func writeField(h hash.Hash, b []byte) {
	var n [8]byte
	binary.BigEndian.PutUint64(n[:], uint64(len(b)))
	h.Write(n[:])
	h.Write(b)
}

// canonicalJSON returns raw with object keys sorted and insignificant space removed, so that
// one tenant's configuration, however serialised, scopes the same keys; raw as is when it is
// not JSON.
func canonicalJSON(raw json.RawMessage) []byte {
	raw = bytes.TrimSpace(raw)
	d := json.NewDecoder(bytes.NewReader(raw))
	d.UseNumber()
	var v any
	if err := d.Decode(&v); err != nil || d.More() {
		return raw
	}
	b, err := json.Marshal(v)
	if err != nil {
		return raw
	}
	return b
}
