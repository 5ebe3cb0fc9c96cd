// Package idemredis is an idempotency.Store in Redis, shared by every replica of the
// connector that points at the same Redis (a single server, or a Redis Cluster), so that a
// keyed send happens at most once across replicas and restarts.
//
// Each idempotency key is one Redis hash under <Prefix>{<hex of the key's SHA-256>}: the
// SHA-256 already scopes the key by tenant and holds no phone number or secret in clear, and
// the braces make it a hash tag, so that Cluster keeps each key's data on one slot. Its fields:
// s, the state (p pending, a answered, x shared with the waiters only, u outcome unknown);
// f, the request's fingerprint (a SHA-256); c, the claim's random id; l, the lease's end (Redis
// time, ms); a, the answer (JSON: the receipt without its recipient, or the error's reason,
// message, provider, provider code, more-info link, retry delay and violations; never an
// error's cause). Every
// key has a TTL: Lease+Window while pending, Window once answered, Lease once shared.
//
// The first request for a key claims it in one atomic script (pending, with its fingerprint,
// a claim id and a lease), sends, and stores its answer with a script that only the claim's
// owner can run to effect. While the send is in flight, its replica renews the lease every
// third of it. Concurrent requests, on any replica, poll the key with a backoff capped at
// PollMax, until an answer, their own deadline, or the claim's end. Polling, rather than
// pub/sub or a blocking pop, holds no connection per waiter, needs no subscription to survive
// a Redis restart or a Cluster failover, and costs one small script call per waiter per poll.
//
// A claim whose lease ends while still pending (its replica died, or lost Redis for a whole
// lease) becomes PROVIDER_OUTCOME_UNKNOWN for the window: the SMS may or may not have been
// sent, and sending again could give the user a second code. The same happens when a send
// succeeded but its answer could not be stored: its caller has its receipt, retries get
// PROVIDER_OUTCOME_UNKNOWN once the lease ends. A claim abandoned by its caller's cancellation
// is deleted (a retry sends); if that delete fails, the lease ends into the same unknown.
package idemredis

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/sms-connector/sms-connector/connector/idempotency"
)

// Defaults of Options.
const (
	// DefaultLease is how long a claim holds without renewal: a replica that dies with a send
	// in flight leaves its key unanswered for at most this long before it becomes
	// PROVIDER_OUTCOME_UNKNOWN. It is renewed every third of it, so a send may take longer.
	DefaultLease = 10 * time.Second
	// DefaultTimeout bounds each Redis call, within the request's context.
	DefaultTimeout = time.Second
	// DefaultPrefix begins every key.
	DefaultPrefix = "sms:idem:"
	// DefaultPollMin and DefaultPollMax bound a waiter's backoff between two looks at a key
	// in flight: a few ms at first, for sends answered at once, at most a tenth of a second,
	// well under a vendor's round trip plus the caller's patience.
	DefaultPollMin = 5 * time.Millisecond
	DefaultPollMax = 100 * time.Millisecond
)

// Options configure a Store; zero values take the defaults.
type Options struct {
	// Lease is how long a claim holds unless renewed (default DefaultLease, at least 30 ms).
	Lease time.Duration
	// Timeout bounds each Redis call (default DefaultTimeout).
	Timeout time.Duration
	// Prefix begins every key (default DefaultPrefix).
	Prefix string
	// PollMin and PollMax bound a waiter's backoff (defaults DefaultPollMin, DefaultPollMax).
	PollMin, PollMax time.Duration
}

// Store is an idempotency.Store in Redis. It is safe for concurrent use; it does not own the
// client, which its caller closes.
type Store struct {
	rdb     redis.UniversalClient
	lease   time.Duration
	timeout time.Duration
	prefix  string
	pollMin time.Duration
	pollMax time.Duration
}

var _ idempotency.Store = (*Store)(nil)

// New returns a Store keeping its keys in rdb. It fails for a nil client or bad options; it
// does not contact Redis.
func New(rdb redis.UniversalClient, o Options) (*Store, error) {
	switch {
	case rdb == nil:
		return nil, errors.New("idemredis: no Redis client")
	case o.Lease < 0, o.Timeout < 0, o.PollMin < 0, o.PollMax < 0:
		return nil, fmt.Errorf("idemredis: negative option in %+v", o)
	case o.Lease > 0 && o.Lease < 30*time.Millisecond:
		return nil, fmt.Errorf("idemredis: Lease %v is under 30ms", o.Lease)
	}
	s := &Store{rdb: rdb, lease: o.Lease, timeout: o.Timeout, prefix: o.Prefix, pollMin: o.PollMin, pollMax: o.PollMax}
	if s.lease == 0 {
		s.lease = DefaultLease
	}
	if s.timeout == 0 {
		s.timeout = DefaultTimeout
	}
	if s.prefix == "" {
		s.prefix = DefaultPrefix
	}
	if s.pollMin == 0 {
		s.pollMin = DefaultPollMin
	}
	if s.pollMax == 0 {
		s.pollMax = DefaultPollMax
	}
	s.pollMax = max(s.pollMax, s.pollMin)
	return s, nil
}

// claimScript looks a key up and claims it when it is free (or holds an answer shared with
// its waiters only, which later requests do not get). KEYS[1]: the key. ARGV: fingerprint,
// new claim id, lease ms, window ms, the claim id the caller waits for ("" when claiming).
// Replies: {lead}, {answer, json}, {unknown}, {pending, claim id}, {conflict}, or {gone} when
// the awaited claim ended without an answer for its waiters.
var claimScript = redis.NewScript(`
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local lease, window, awaited = tonumber(ARGV[3]), tonumber(ARGV[4]), ARGV[5]
local h = redis.call('HMGET', KEYS[1], 's', 'f', 'c', 'l', 'a')
local s = h[1]
if s == 'x' and awaited ~= '' and h[3] == awaited then
  return {'answer', h[5]}
end
if not s or s == 'x' then
  if awaited ~= '' then return {'gone'} end
  redis.call('DEL', KEYS[1])
  redis.call('HSET', KEYS[1], 's', 'p', 'f', ARGV[1], 'c', ARGV[2], 'l', string.format('%.0f', now + lease))
  redis.call('PEXPIRE', KEYS[1], lease + window)
  return {'lead'}
end
if h[2] ~= ARGV[1] then return {'conflict'} end
if s == 'p' then
  if tonumber(h[4]) <= now then
    redis.call('HSET', KEYS[1], 's', 'u')
    redis.call('HDEL', KEYS[1], 'c', 'l')
    redis.call('PEXPIRE', KEYS[1], window)
    return {'unknown'}
  end
  if awaited ~= '' and h[3] ~= awaited then return {'gone'} end
  return {'pending', h[3]}
end
if s == 'u' then return {'unknown'} end
return {'answer', h[5]}
`)

// settleScript stores a claim's answer, or frees its key, if the claim is still pending and
// its own. KEYS[1]: the key. ARGV: claim id, new state (a answered, x shared, d delete), the
// answer, TTL ms. Replies 1 when done, 0 when the claim is no longer the caller's.
var settleScript = redis.NewScript(`
local h = redis.call('HMGET', KEYS[1], 's', 'c')
if h[1] ~= 'p' or h[2] ~= ARGV[1] then return 0 end
if ARGV[2] == 'd' then
  redis.call('DEL', KEYS[1])
  return 1
end
redis.call('HSET', KEYS[1], 's', ARGV[2], 'a', ARGV[3])
redis.call('HDEL', KEYS[1], 'l')
if ARGV[2] == 'a' then redis.call('HDEL', KEYS[1], 'c') end
redis.call('PEXPIRE', KEYS[1], ARGV[4])
return 1
`)

// renewScript extends a pending claim's lease if it is still the caller's. KEYS[1]: the key.
// ARGV: claim id, lease ms, window ms. Replies 1 when renewed, 0 otherwise.
var renewScript = redis.NewScript(`
local h = redis.call('HMGET', KEYS[1], 's', 'c')
if h[1] ~= 'p' or h[2] ~= ARGV[1] then return 0 end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('HSET', KEYS[1], 'l', string.format('%.0f', now + tonumber(ARGV[2])))
redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[2]) + tonumber(ARGV[3]))
return 1
`)

// claim is a Ticket's reference: the claim held (with its renewal) or the one waited for.
type claim struct {
	key  string
	id   string
	stop chan struct{} // closed by Settle: the renewal ends (Lead only)
	done chan struct{} // closed when the renewal has ended (Lead only)
}

// Claim looks k up in Redis and claims it when it is free; see the package documentation.
func (s *Store) Claim(ctx context.Context, k idempotency.Key) (idempotency.Ticket, error) {
	key := s.prefix + "{" + hex.EncodeToString(k.ID[:]) + "}"
	id, err := newClaimID()
	if err != nil {
		return idempotency.Ticket{}, err
	}
	reply, err := s.look(ctx, key, k, id, "")
	if err != nil {
		return idempotency.Ticket{}, err
	}
	t := idempotency.Ticket{Key: k}
	switch reply[0] {
	case "lead":
		c := &claim{key: key, id: id, stop: make(chan struct{}), done: make(chan struct{})}
		go s.renew(context.WithoutCancel(ctx), c, k.Window)
		t.State, t.Claim = idempotency.Lead, c
	case "pending":
		t.State, t.Claim = idempotency.InFlight, &claim{key: key, id: reply[1]}
	case "answer", "unknown":
		a, err := decodeReply(reply)
		if err != nil {
			return idempotency.Ticket{}, err
		}
		t.State, t.Answer = idempotency.Answered, a
	case "conflict":
		return idempotency.Ticket{}, idempotency.ErrConflict
	default:
		return idempotency.Ticket{}, fmt.Errorf("idemredis: claim: unexpected reply %q", reply)
	}
	return t, nil
}

// Wait polls the key of the claim t found until it is answered, the claim ends without an
// answer for its waiters (nil), or ctx ends.
func (s *Store) Wait(ctx context.Context, t idempotency.Ticket) (*idempotency.Answer, error) {
	c := t.Claim.(*claim)
	pause := s.pollMin
	timer := time.NewTimer(pause)
	defer timer.Stop()
	for {
		select {
		case <-timer.C:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		reply, err := s.look(ctx, c.key, t.Key, "", c.id)
		if err != nil {
			return nil, err
		}
		switch reply[0] {
		case "pending":
			pause = min(2*pause, s.pollMax)
			timer.Reset(pause)
			continue
		case "gone":
			return nil, nil
		case "conflict":
			return nil, idempotency.ErrConflict
		case "answer", "unknown":
			a, err := decodeReply(reply)
			if err != nil {
				return nil, err
			}
			return &a, nil
		}
		return nil, fmt.Errorf("idemredis: wait: unexpected reply %q", reply)
	}
}

// Settle stores the answer of the claim t holds, shares it or frees the key, as o says, if
// the claim is still its own; it fails when the claim's lease ended first (its key then
// answers PROVIDER_OUTCOME_UNKNOWN) or when Redis fails.
func (s *Store) Settle(ctx context.Context, t idempotency.Ticket, o idempotency.Outcome, a idempotency.Answer) error {
	c := t.Claim.(*claim)
	close(c.stop)
	<-c.done
	state, ttl, payload := "d", time.Duration(0), []byte(nil)
	if o != idempotency.Abandoned {
		var err error
		if payload, err = encodeAnswer(a); err != nil {
			return err
		}
		state, ttl = "a", t.Key.Window
		if o == idempotency.Shared {
			state, ttl = "x", s.lease
		}
	}
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	done, err := settleScript.Run(ctx, s.rdb, []string{c.key}, c.id, state, payload, ms(ttl)).Int()
	if err != nil {
		return fmt.Errorf("idemredis: settle: %w", err)
	}
	if done == 0 {
		return errors.New("idemredis: settle: the claim's lease ended before its answer was stored")
	}
	return nil
}

// renew extends c's lease every third of it until Settle stops it. A failed renewal is
// tried again at the next tick; if the lease ends meanwhile, the key's outcome is unknown.
func (s *Store) renew(ctx context.Context, c *claim, window time.Duration) {
	defer close(c.done)
	tick := time.NewTicker(s.lease / 3)
	defer tick.Stop()
	for {
		select {
		case <-c.stop:
			return
		case <-tick.C:
		}
		rctx, cancel := context.WithTimeout(ctx, s.timeout)
		_ = renewScript.Run(rctx, s.rdb, []string{c.key}, c.id, ms(s.lease), ms(window)).Err()
		cancel()
	}
}

// look runs claimScript for key within s.timeout and returns its reply's strings.
func (s *Store) look(ctx context.Context, key string, k idempotency.Key, id, awaited string) ([]string, error) {
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	reply, err := claimScript.Run(ctx, s.rdb, []string{key}, k.Request[:], id, ms(s.lease), ms(k.Window), awaited).StringSlice()
	if err != nil {
		return nil, fmt.Errorf("idemredis: claim: %w", err)
	}
	if len(reply) == 0 {
		return nil, errors.New("idemredis: claim: empty reply")
	}
	return reply, nil
}

// newClaimID is a random claim id: no two claims share one, so that only a claim's owner can
// settle or renew it.
func newClaimID() (string, error) {
	var b [12]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("idemredis: claim id: %w", err)
	}
	return hex.EncodeToString(b[:]), nil
}

// ms is d in whole milliseconds, at least 1 (Redis expires a key at once for 0).
func ms(d time.Duration) int64 {
	return max(d.Milliseconds(), 1)
}
