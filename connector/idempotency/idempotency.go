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
// Memory is bounded by Options.MaxEntries; when it is full the oldest stored answer is
// forgotten first.
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
	// DefaultMaxEntries bounds the stored answers (about 300 bytes each).
	DefaultMaxEntries = 100_000
)

// Options configure a Connector; zero values take the defaults.
type Options struct {
	// Window is how long after its send's answer a key is remembered (default DefaultWindow).
	Window time.Duration
	// MaxEntries bounds how many keys are remembered, in flight or answered (default
	// DefaultMaxEntries).
	MaxEntries int
	// Now is the clock (default time.Now); tests pass a fake one.
	Now func() time.Time
}

// Connector is a connector.SmsConnector that sends each idempotency key at most once per
// window through another one. It is safe for concurrent use.
type Connector struct {
	connector.Forward // ValidateConfig and Metadata are the wrapped connector's
	window            time.Duration
	max               int
	now               func() time.Time

	mu      sync.Mutex
	entries map[[sha256.Size]byte]*entry
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
	}
	c := &Connector{Forward: connector.Forward{Next: next}, window: o.Window, max: o.MaxEntries, now: o.Now, entries: make(map[[sha256.Size]byte]*entry)}
	if c.window == 0 {
		c.window = DefaultWindow
	}
	if c.max == 0 {
		c.max = DefaultMaxEntries
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
// when ctx ends while waiting for a concurrent duplicate, and RATE_LIMITED when MaxEntries
// sends with keys are in flight at once.
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
	if len(c.entries) >= c.max && !c.evictOldest() {
		return nil, false, &connector.Error{
			Reason:     connector.ReasonRateLimited,
			Message:    fmt.Sprintf("%d sends with idempotency keys are in flight, the most the connector tracks; retry shortly", c.max),
			RetryAfter: time.Second,
		}
	}
	e = &entry{request: request, done: make(chan struct{})}
	c.entries[key] = e
	return e, true, nil
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
	c.mu.Lock()
	if o == kept {
		e.expires = c.now().Add(c.window)
		c.stored = append(c.stored, storedKey{key, e})
	} else if c.entries[key] == e {
		delete(c.entries, key)
	}
	c.mu.Unlock()
	close(e.done)
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
	for c.head < len(c.stored) && !now.Before(c.stored[c.head].e.expires) {
		c.forgetHead()
	}
}

// evictOldest forgets the stored answer that would expire first, to make room. It reports
// false when there is none (every entry is in flight). c.mu is held.
func (c *Connector) evictOldest() bool {
	if c.head == len(c.stored) {
		return false
	}
	c.forgetHead()
	return true
}

// forgetHead drops the first stored answer of the queue. c.mu is held.
func (c *Connector) forgetHead() {
	s := c.stored[c.head]
	c.stored[c.head] = storedKey{}
	c.head++
	if c.entries[s.key] == s.e {
		delete(c.entries, s.key)
	}
	if c.head > len(c.stored)/2 { // compact, so the queue does not grow without end
		c.stored = append(c.stored[:0], c.stored[c.head:]...)
		c.head = 0
	}
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

// fingerprint identifies what msg asks for: recipient, usage type and payload.
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
