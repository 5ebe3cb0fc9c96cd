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
// The claims and answers live in a Store: by default this process's memory (below); with
// Options.Store, a store shared by replicas (package idemredis), so that a retry reaching
// another replica, or the same one after a restart, gets the first answer. A Store only keeps
// state; what is stored, who sends and who waits is decided here, the same for every store.
// A keyed send whose store fails (cannot be reached, answers errors) is refused with
// STORE_UNAVAILABLE and a RetryAfter, and nothing is sent: sending without a claim could send
// twice. If the store fails after the send, its caller still gets its answer, as the message
// was sent; what retries then get is the store's to say (idemredis: PROVIDER_OUTCOME_UNKNOWN).
// A message without a key never touches the store.
//
// The memory store is bounded: at most Options.MaxEntries keys, in flight or answered, taking at most
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

// Options configure a Connector; zero values take the defaults.
type Options struct {
	// Window is how long after its send's answer a key is remembered (default DefaultWindow).
	Window time.Duration
	// Store keeps the claims and answers (default nil: a store in this process's memory,
	// bounded by MaxEntries and MaxBytes). A store shared by replicas, such as idemredis's,
	// makes the keys hold across them and across restarts.
	Store Store
	// MaxEntries bounds how many keys the memory store remembers, in flight or answered
	// (default DefaultMaxEntries). A new key beyond it is refused with RATE_LIMITED; see the
	// package documentation. Unused with another Store.
	MaxEntries int
	// MaxBytes bounds the memory the remembered keys take, as the memory store counts it
	// (default DefaultMaxBytes): a fixed cost per key plus its stored answer's strings. It is
	// checked when a new key arrives, which is refused like one beyond MaxEntries; the answers
	// of the sends in flight then may take the store over it by their own size. The process's
	// heap holds more than this count: the garbage collector's headroom (GOGC) comes on top.
	// Unused with another Store.
	MaxBytes int64
	// Now is the memory store's clock (default time.Now); tests pass a fake one.
	Now func() time.Time
	// OnStoreError, when set, is told of each failure of Store that refused a send with
	// STORE_UNAVAILABLE (for a metric and a log line); it must not block.
	OnStoreError func(error)
}

// Store keeps the claims on idempotency keys and their answers for a Connector: in this
// process's memory (the default) or shared by replicas (package idemredis). It is safe for
// concurrent use. A Store decides nothing: the Connector says who sends and what is kept.
type Store interface {
	// Claim looks k up and claims it when it is free. The Ticket says whether the caller
	// leads (it holds the claim and must Settle it), the key is answered (Ticket.Answer), or
	// another send with the key is in flight (the caller may Wait for it). It returns
	// ErrConflict when k.ID is held or answered for another request than k.Request, and a
	// *connector.Error for a refusal of the store's own (a full store).
	Claim(ctx context.Context, k Key) (Ticket, error)
	// Wait waits, within ctx, until the send in flight that t found is settled, and returns
	// its answer, or nil when that send was abandoned: the caller claims again. It may return
	// ErrConflict when the key was meanwhile claimed for another request.
	Wait(ctx context.Context, t Ticket) (*Answer, error)
	// Settle ends the claim t holds with outcome o: Kept stores a for t.Key.Window, Shared
	// gives a to the callers waiting for it and frees the key, Abandoned frees the key without
	// an answer, and its waiters claim again.
	Settle(ctx context.Context, t Ticket, o Outcome, a Answer) error
}

// ErrConflict is a Store's error for a key claimed or answered for another request.
var ErrConflict = errors.New("idempotency: key held for another request")

// Key identifies a send to a Store.
type Key struct {
	// ID is the key the send is remembered under: a SHA-256 of the tenant and the
	// idempotency key.
	ID [sha256.Size]byte
	// Request is the fingerprint of what the send asks for (recipient, usage type, payload),
	// a SHA-256: the same ID with another Request is a conflict.
	Request [sha256.Size]byte
	// Window is how long a Kept answer is remembered.
	Window time.Duration
}

// State is what a Claim found.
type State int

const (
	// Lead: the caller holds the key's claim; it sends, then Settles the claim.
	Lead State = iota + 1
	// InFlight: another caller holds the claim; the caller may Wait for its answer.
	InFlight
	// Answered: the key has an answer, in Ticket.Answer.
	Answered
)

// Ticket is a Claim's result.
type Ticket struct {
	// Key is the key claimed or looked up.
	Key Key
	// State says what the Claim found.
	State State
	// Answer is the key's answer when State is Answered.
	Answer Answer
	// Claim is the store's own reference to the claim held (Lead) or found (InFlight), for
	// Wait and Settle.
	Claim any
}

// Outcome is what becomes of a settled send's answer; see the package documentation.
type Outcome int

const (
	// Kept: the answer is stored for the window.
	Kept Outcome = iota + 1
	// Shared: the answer goes to the callers waiting for it only; the key is freed.
	Shared
	// Abandoned: the first caller went away; the key is freed and its waiters claim again.
	Abandoned
)

// Answer is a send's answer: a receipt, an error, or both as the wrapped connector gave them.
// A Store may keep a receipt without its recipient (To), a phone number: the Connector fills
// it back in from the request, whose recipient the key's fingerprint guarantees is the same.
type Answer struct {
	Receipt *connector.Receipt
	Err     error
}

// storeRetryAfter is the RetryAfter of a send refused because the store failed.
const storeRetryAfter = time.Second

// Connector is a connector.SmsConnector that sends each idempotency key at most once per
// window through another one. It is safe for concurrent use.
type Connector struct {
	connector.Forward // ValidateConfig and Metadata are the wrapped connector's
	window            time.Duration
	store             Store
	mem               *memStore   // the store when Options.Store is nil
	onStoreError      func(error) // Options.OnStoreError
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
	c := &Connector{Forward: connector.Forward{Next: next}, window: o.Window, store: o.Store, onStoreError: o.OnStoreError}
	if c.window == 0 {
		c.window = DefaultWindow
	}
	if c.store == nil {
		c.mem = newMemStore(o.MaxEntries, o.MaxBytes, o.Now)
		c.store = c.mem
	}
	return c, nil
}

// Send sends msg through the wrapped connector unless a send with the same idempotency key
// and tenant is in flight or was answered within the window; see the package documentation.
// A message without a key is sent as is. Besides the wrapped connector's errors it returns
// INVALID_REQUEST for a key reused with a different request, CANCELLED or PROVIDER_TIMEOUT
// when ctx ends while waiting for a concurrent duplicate, RATE_LIMITED for a new key when
// the memory store is full (MaxEntries or MaxBytes), and STORE_UNAVAILABLE when the store
// fails.
func (c *Connector) Send(ctx context.Context, msg *connector.Message) (*connector.Receipt, error) {
	if msg == nil || msg.IdempotencyKey == "" {
		return c.Next.Send(ctx, msg)
	}
	k := Key{ID: scopedKey(msg), Request: fingerprint(msg), Window: c.window}
	for {
		t, err := c.store.Claim(ctx, k)
		if err != nil {
			return nil, c.storeError(ctx, err, "looking up the idempotency key")
		}
		switch t.State {
		case Lead:
			return c.lead(ctx, t, msg)
		case Answered:
			return answer(t.Answer, msg)
		}
		a, err := c.store.Wait(ctx, t)
		if err != nil {
			return nil, c.storeError(ctx, err, "waiting for a concurrent send with the same key")
		}
		if a != nil {
			return answer(*a, msg)
		}
		// The first caller went away without an answer: try again, perhaps as the leader,
		// unless this caller has gone too.
		if err := ctx.Err(); err != nil {
			return nil, waitError(err)
		}
	}
}

// storeError is the error of a send whose Claim or Wait failed with err while doing what.
func (c *Connector) storeError(ctx context.Context, err error, doing string) error {
	var ce *connector.Error
	switch {
	case errors.Is(err, ErrConflict):
		return &connector.Error{
			Reason:  connector.ReasonInvalidRequest,
			Message: "idempotency key reused with a different request: the recipient, usage type or payload differs from the send it identifies",
			Violations: []connector.Violation{{Field: "idempotency_key",
				Description: "was used within the idempotency window for a different request; use a new key for a new message"}},
		}
	case errors.As(err, &ce):
		return err
	case ctx.Err() != nil:
		return waitError(ctx.Err())
	}
	if c.onStoreError != nil {
		c.onStoreError(err)
	}
	return &connector.Error{
		Reason:     connector.ReasonStoreUnavailable,
		Message:    fmt.Sprintf("the idempotency store failed; nothing was sent; retry after %v", storeRetryAfter),
		RetryAfter: storeRetryAfter,
		Err:        fmt.Errorf("idempotency: %s: %w", doing, err),
	}
}

// lead sends msg for the claim of t and settles it. If the wrapped connector panics, the
// claim is abandoned (waiters try again) before the panic goes on. The claim is settled even
// when ctx has ended (the store bounds that call itself); a store failure there is not the
// caller's: the message was sent or not, and its answer is the caller's either way.
func (c *Connector) lead(ctx context.Context, t Ticket, msg *connector.Message) (r *connector.Receipt, err error) {
	settleCtx := context.WithoutCancel(ctx)
	settled := false
	defer func() {
		if !settled {
			_ = c.store.Settle(settleCtx, t, Abandoned, Answer{})
		}
	}()
	r, err = c.Next.Send(ctx, msg)
	a := Answer{Err: err}
	if r != nil {
		cp := *r
		a.Receipt = &cp
	}
	_ = c.store.Settle(settleCtx, t, outcomeOf(ctx, err), a)
	settled = true
	return r, err
}

// outcomeOf decides what becomes of a send's answer; see the package documentation.
func outcomeOf(ctx context.Context, err error) Outcome {
	if err == nil {
		return Kept
	}
	if ctx.Err() != nil || connector.ReasonOf(err) == connector.ReasonCancelled {
		return Abandoned
	}
	switch connector.ReasonOf(err) {
	case connector.ReasonRateLimited, connector.ReasonProviderRateLimited,
		connector.ReasonProviderUnavailable, connector.ReasonProviderQueueFull, connector.ReasonOverloaded,
		connector.ReasonStoreUnavailable:
		return Shared
	}
	return Kept
}

// answer returns a copy of a, so that no caller can change another's, with msg's recipient
// in a receipt that a store kept without it.
func answer(a Answer, msg *connector.Message) (*connector.Receipt, error) {
	var r *connector.Receipt
	if a.Receipt != nil {
		cp := *a.Receipt
		if cp.To == "" {
			cp.To = msg.To
		}
		r = &cp
	}
	var ce *connector.Error
	if a.Err != nil && errors.As(a.Err, &ce) && ce == a.Err {
		cp := *ce
		return r, &cp
	}
	return r, a.Err
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

// Len reports how many keys the memory store remembers, in flight or answered; 0 with
// another Store.
func (c *Connector) Len() int {
	if c.mem == nil {
		return 0
	}
	return c.mem.Len()
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
