// Package guardredis is a guard.Store in Redis, shared by every replica of a connector: the
// guard's limits and its global budget's breaker then hold across replicas and restarts as if
// they were one process.
//
// Each window is a sorted set of the slots taken within it, scored by the Redis server's
// clock (TIME, in microseconds), so a limit is exact, not approximated by fixed buckets, and
// replicas need no synchronised clocks. One Lua script takes the slots of all a send's
// windows at once, all or none, in one round trip: it drops each window's expired slots,
// counts the rest, and adds the send's slot to every window only when each has room; a full
// window answers how long until its oldest counted slot frees. A breaker window (the global
// budget) found full sets a breaker key that lives one window; while it exists every send is
// refused. Every key's TTL is reset to its window on each slot added, so nothing outlives its
// window. Release removes the send's slot (ZREM) from each window.
//
// Delivery feedback keeps, per number range or country, two sorted sets of message ids
// scored by server time: every outcome, and the undelivered ones; their TTL is the outcome
// window, and the oldest go beyond guard.MaxOutcomesPerWindow. One Lua script records an
// outcome in every scope (ZADD NX on the first set, so a replayed outcome counts once), and
// when a scope's undelivered share passes the rule sets its cool-down key, which lives the
// cool-down. Reserve checks the cool-down keys of a send's scopes in its one round trip.
//
// Keys are "{<prefix>:guard}:<guard key>": the guard's keys hold HMACs, never a phone number
// or an address, and the hash tag puts every key of the guard in one Redis Cluster hash slot,
// since every send touches the global budget. go-redis/redis_rate is not used: it is GCRA, a
// rate that cannot give back the slot of a send that sent nothing, nor say exactly when the
// oldest send of a sliding window leaves it.
package guardredis

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/sms-connector/sms-connector/connector/guard"
)

// Defaults of Options.
const (
	// DefaultPrefix begins every key, inside the hash tag.
	DefaultPrefix = "sms-connector"
	// DefaultTimeout bounds each call to Redis, within the caller's own deadline.
	DefaultTimeout = time.Second
)

// Options configure a Store; zero values take the defaults.
type Options struct {
	// Prefix begins every key (default DefaultPrefix): deployments sharing a Redis keep apart
	// by it. It may not hold braces.
	Prefix string
	// Timeout bounds each call to Redis (default DefaultTimeout); the caller's context bounds
	// it too.
	Timeout time.Duration
}

// Store is a guard.Store in Redis. It is safe for concurrent use.
type Store struct {
	c       redis.UniversalClient
	tag     string // "{prefix:guard}:"
	timeout time.Duration
}

var _ guard.Store = (*Store)(nil)

// New returns a Store on c, which the caller keeps and closes.
func New(c redis.UniversalClient, o Options) (*Store, error) {
	if c == nil {
		return nil, errors.New("guardredis: no Redis client")
	}
	if o.Prefix == "" {
		o.Prefix = DefaultPrefix
	}
	if strings.ContainsAny(o.Prefix, "{}") {
		return nil, fmt.Errorf("guardredis: prefix %q holds a brace", o.Prefix)
	}
	if o.Timeout <= 0 {
		o.Timeout = DefaultTimeout
	}
	return &Store{c: c, tag: "{" + o.Prefix + ":guard}:", timeout: o.Timeout}, nil
}

// Key returns the Redis key of a guard key: for documentation and tests.
func (s *Store) Key(guardKey string) string { return s.tag + guardKey }

// reserveScript takes a slot of every window or none. KEYS: the windows (a cool-down window's
// cool-down key), then the breaker keys. ARGV[1]: the slot's member; ARGV[2]: the number of
// windows n; then for window i: ARGV[3i] its max, ARGV[3i+1] its span in microseconds,
// ARGV[3i+2] the KEYS index of its breaker (0: none; -1: a cool-down window, which takes no
// slot). It returns {0, 0, 0} when granted, else {i, wait in microseconds, breaker 0 or 1}.
var reserveScript = redis.NewScript(`
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local n = tonumber(ARGV[2])
for i = 1, n do
  local b = tonumber(ARGV[3*i+2])
  if b < 0 then
    local ttl = redis.call('PTTL', KEYS[i])
    if ttl > 0 then return {i, ttl * 1000, 0} end
  elseif b > 0 then
    local ttl = redis.call('PTTL', KEYS[b])
    if ttl > 0 then return {i, ttl * 1000, 1} end
  end
end
for i = 1, n do
  if tonumber(ARGV[3*i+2]) >= 0 then
    local max = tonumber(ARGV[3*i])
    local span = tonumber(ARGV[3*i+1])
    redis.call('ZREMRANGEBYSCORE', KEYS[i], '-inf', now - span)
    local count = redis.call('ZCARD', KEYS[i])
    if count >= max then
      local b = tonumber(ARGV[3*i+2])
      if b > 0 then
        redis.call('SET', KEYS[b], '1', 'PX', math.ceil(span / 1000))
        return {i, span, 1}
      end
      local oldest = redis.call('ZRANGE', KEYS[i], count - max, count - max, 'WITHSCORES')
      return {i, tonumber(oldest[2]) + span - now, 0}
    end
  end
end
for i = 1, n do
  if tonumber(ARGV[3*i+2]) >= 0 then
    redis.call('ZADD', KEYS[i], now, ARGV[1])
    redis.call('PEXPIRE', KEYS[i], math.ceil(tonumber(ARGV[3*i+1]) / 1000))
  end
end
return {0, 0, 0}
`)

// Reserve implements guard.Store in one round trip (EVALSHA, or EVAL the first time a server
// sees the script).
func (s *Store) Reserve(ctx context.Context, ws []guard.Window) (guard.Reservation, guard.Refusal, error) {
	if len(ws) == 0 {
		return guard.Reservation{}, guard.Refusal{}, nil
	}
	keys := make([]string, len(ws), 2*len(ws))
	args := make([]any, 2, 2+3*len(ws))
	id, err := newID()
	if err != nil {
		return guard.Reservation{}, guard.Refusal{}, err
	}
	args[0], args[1] = id, len(ws)
	for i, w := range ws {
		if w.Cooldown {
			keys[i] = s.tag + "cooldown:" + w.Key
			args = append(args, 0, 0, -1)
			continue
		}
		if w.Max < 1 || w.Span < time.Millisecond {
			return guard.Reservation{}, guard.Refusal{}, fmt.Errorf("guardredis: reserve %q: max %d must be positive and span %v at least 1ms", w.Key, w.Max, w.Span)
		}
		keys[i] = s.tag + w.Key
		breaker := 0
		if w.Breaker {
			keys = append(keys, s.tag+"breaker:"+w.Key)
			breaker = len(keys)
		}
		args = append(args, w.Max, w.Span.Microseconds(), breaker)
	}
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	res, err := reserveScript.Run(ctx, s.c, keys, args...).Int64Slice()
	if err != nil {
		return guard.Reservation{}, guard.Refusal{}, fmt.Errorf("guardredis: reserve: %w", err)
	}
	if len(res) != 3 || res[0] < 0 || res[0] > int64(len(ws)) {
		return guard.Reservation{}, guard.Refusal{}, fmt.Errorf("guardredis: reserve: unexpected answer %v", res)
	}
	if res[0] > 0 {
		wait := max(time.Duration(res[1])*time.Microsecond, time.Microsecond)
		return guard.Reservation{}, guard.Refusal{Window: int(res[0] - 1), Breaker: res[2] == 1, RetryAfter: wait}, nil
	}
	r := guard.Reservation{Keys: make([]string, 0, len(ws)), ID: id}
	for _, w := range ws {
		if !w.Cooldown {
			r.Keys = append(r.Keys, w.Key)
		}
	}
	return r, guard.Refusal{}, nil
}

// Release implements guard.Store: one ZREM per window, pipelined in one round trip.
func (s *Store) Release(ctx context.Context, r guard.Reservation) error {
	if r.ID == "" || len(r.Keys) == 0 {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	_, err := s.c.Pipelined(ctx, func(p redis.Pipeliner) error {
		for _, k := range r.Keys {
			p.ZRem(ctx, s.tag+k, r.ID)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("guardredis: release: %w", err)
	}
	return nil
}

// observeScript records an outcome in every scope. KEYS, three per scope: its outcomes, its
// undelivered outcomes, its cool-down. ARGV: the message id, undelivered (0 or 1), the span
// in microseconds, the minimum outcomes, the maximum undelivered share in parts per million,
// the cool-down in milliseconds, the most outcomes a scope keeps. It returns, per scope,
// {outcomes, undelivered, counted 0 or 1, tripped 0 or 1, cool-down left in milliseconds}.
var observeScript = redis.NewScript(`
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local id, undelivered, span = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3])
local min, ppm, cool, cap = tonumber(ARGV[4]), tonumber(ARGV[5]), tonumber(ARGV[6]), tonumber(ARGV[7])
local ttl = math.ceil(span / 1000)
local out = {}
for i = 1, #KEYS, 3 do
  local all, bad, cd = KEYS[i], KEYS[i+1], KEYS[i+2]
  redis.call('ZREMRANGEBYSCORE', all, '-inf', now - span)
  redis.call('ZREMRANGEBYSCORE', bad, '-inf', now - span)
  local left = redis.call('PTTL', cd)
  local counted = 0
  if left <= 0 and redis.call('ZADD', all, 'NX', now, id) == 1 then
    counted = 1
    if undelivered == 1 then redis.call('ZADD', bad, now, id) end
    local over = redis.call('ZCARD', all) - cap
    if over > 0 then
      local old = redis.call('ZRANGE', all, 0, over - 1)
      redis.call('ZREMRANGEBYRANK', all, 0, over - 1)
      redis.call('ZREM', bad, unpack(old))
    end
    redis.call('PEXPIRE', all, ttl)
    if redis.call('EXISTS', bad) == 1 then redis.call('PEXPIRE', bad, ttl) end
  end
  local n = redis.call('ZCARD', all)
  local f = redis.call('ZCARD', bad)
  local tripped = 0
  if counted == 1 and n >= min and f * 1000000 > ppm * n then
    redis.call('SET', cd, '1', 'PX', cool)
    tripped, left = 1, cool
  end
  if left < 0 then left = 0 end
  out[#out+1] = {n, f, counted, tripped, left}
end
return out
`)

// Observe implements guard.Store in one round trip.
func (s *Store) Observe(ctx context.Context, o guard.Outcome, rule guard.FeedbackRule) ([]guard.Tally, error) {
	if len(o.Keys) == 0 {
		return nil, nil
	}
	if rule.Span < time.Millisecond || rule.Cooldown < time.Millisecond || rule.MinOutcomes < 1 ||
		rule.MaxUndeliveredPPM < 1 || rule.MaxUndeliveredPPM >= 1_000_000 || o.ID == "" {
		return nil, fmt.Errorf("guardredis: observe: rule %+v or message id out of range", rule)
	}
	keys := make([]string, 0, 3*len(o.Keys))
	for _, k := range o.Keys {
		keys = append(keys, s.tag+"outcomes:"+k, s.tag+"undelivered:"+k, s.tag+"cooldown:"+k)
	}
	undelivered := 0
	if o.Undelivered {
		undelivered = 1
	}
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	res, err := observeScript.Run(ctx, s.c, keys, o.ID, undelivered, rule.Span.Microseconds(), rule.MinOutcomes,
		rule.MaxUndeliveredPPM, rule.Cooldown.Milliseconds(), guard.MaxOutcomesPerWindow).Slice()
	if err != nil {
		return nil, fmt.Errorf("guardredis: observe: %w", err)
	}
	if len(res) != len(o.Keys) {
		return nil, fmt.Errorf("guardredis: observe: %d answers for %d scopes", len(res), len(o.Keys))
	}
	tallies := make([]guard.Tally, len(res))
	for i, r := range res {
		v, ok := r.([]any)
		if !ok || len(v) != 5 {
			return nil, fmt.Errorf("guardredis: observe: unexpected answer %v", r)
		}
		var n [5]int64
		for j := range n {
			if n[j], ok = v[j].(int64); !ok {
				return nil, fmt.Errorf("guardredis: observe: unexpected answer %v", r)
			}
		}
		tallies[i] = guard.Tally{Outcomes: int(n[0]), Undelivered: int(n[1]), Counted: n[2] == 1, Tripped: n[3] == 1,
			CooldownLeft: time.Duration(n[4]) * time.Millisecond}
	}
	return tallies, nil
}

// newID returns a slot member unique among every replica: 96 random bits.
func newID() (string, error) {
	var b [12]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("guardredis: slot id: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(b[:]), nil
}
