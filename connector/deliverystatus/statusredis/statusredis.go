// Package statusredis is a deliverystatus.Store in Redis, shared by every replica of the
// connector that points at the same Redis (a single server, or a Redis Cluster), so that any
// replica answers a message's status and a message's final state is reported once across them.
//
// Each message is one Redis hash under <Prefix>{<message id>}: the braces make the id a hash
// tag, so Cluster keeps each message on one slot. Its fields: s, the state; n, the state's rank;
// v, the vendor's status word; r, the reason; c, the vendor's code; u, when the state last
// changed (vendor's time, Unix ms); g, the segments; p and pu, the price and its unit; t, when
// the send was accepted (Unix ms); k, when a report last confirmed the record (Unix ms). No
// phone number is stored, in clear or hashed. Every key has a TTL (Options.TTL, by default
// deliverystatus.DefaultTTL), set again at each write.
//
// A report is merged by one Lua script (deliverystatus.Fold's rule), so concurrent reports for
// one message, on any replica, are applied one at a time and only one of them makes the state
// final.
package statusredis

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/sms-connector/sms-connector/connector"
	"github.com/sms-connector/sms-connector/connector/deliverystatus"
)

// Defaults of Options.
const (
	// DefaultPrefix begins every key.
	DefaultPrefix = "sms:status:"
	// DefaultTimeout bounds each Redis call, within the caller's context.
	DefaultTimeout = time.Second
)

// Options configure a Store; zero values take the defaults.
type Options struct {
	// TTL is how long a record is kept after its last write (default deliverystatus.DefaultTTL).
	TTL time.Duration
	// Prefix begins every key (default DefaultPrefix).
	Prefix string
	// Timeout bounds each Redis call (default DefaultTimeout).
	Timeout time.Duration
}

// Store is a deliverystatus.Store in Redis. It is safe for concurrent use; it does not own the
// client, which its caller closes.
type Store struct {
	rdb     redis.UniversalClient
	ttl     time.Duration
	prefix  string
	timeout time.Duration
}

var _ deliverystatus.Store = (*Store)(nil)

// New returns a Store keeping its records in rdb. It fails for a nil client or bad options; it
// does not contact Redis.
func New(rdb redis.UniversalClient, o Options) (*Store, error) {
	switch {
	case rdb == nil:
		return nil, errors.New("statusredis: no Redis client")
	case o.TTL < 0, o.Timeout < 0:
		return nil, fmt.Errorf("statusredis: negative option in %+v", o)
	case o.TTL > 0 && o.TTL < time.Second:
		return nil, fmt.Errorf("statusredis: TTL %v is under a second", o.TTL)
	}
	s := &Store{rdb: rdb, ttl: o.TTL, prefix: o.Prefix, timeout: o.Timeout}
	if s.ttl == 0 {
		s.ttl = deliverystatus.DefaultTTL
	}
	if s.prefix == "" {
		s.prefix = DefaultPrefix
	}
	if s.timeout == 0 {
		s.timeout = DefaultTimeout
	}
	return s, nil
}

// Key returns the Redis key of messageID's record.
func (s *Store) Key(messageID string) string { return s.prefix + "{" + messageID + "}" }

// mergeScript applies deliverystatus.Fold to one record. KEYS[1]: the key. ARGV: TTL ms, state,
// rank, vendor status, reason, vendor code, updated ms, segments, price, price
// unit, sent ms (0: unknown), checked ms (0: not a check). Reply: the outcome ("ignored", "confirmed",
// "advanced") then the record's fields and values, as HGETALL gives them.
var mergeScript = redis.NewScript(`
local s = redis.call('HMGET', KEYS[1], 's', 'n')
local rank = tonumber(ARGV[3])
local res = 'advanced'
if s[1] then
  local old = tonumber(s[2])
  if rank < old or (rank == old and s[1] ~= ARGV[2]) then
    if ARGV[11] ~= '0' then redis.call('HSETNX', KEYS[1], 't', ARGV[11]) end
    local out = redis.call('HGETALL', KEYS[1])
    table.insert(out, 1, 'ignored')
    return out
  end
  if rank == old then res = 'confirmed' end
end
if res == 'advanced' then
  redis.call('HSET', KEYS[1], 's', ARGV[2], 'n', ARGV[3], 'v', ARGV[4], 'r', ARGV[5], 'c', ARGV[6], 'u', ARGV[7])
end
if ARGV[8] ~= '0' then redis.call('HSET', KEYS[1], 'g', ARGV[8]) end
if ARGV[9] ~= '' then redis.call('HSET', KEYS[1], 'p', ARGV[9], 'pu', ARGV[10]) end
if ARGV[11] ~= '0' then redis.call('HSETNX', KEYS[1], 't', ARGV[11]) end
if ARGV[12] ~= '0' then redis.call('HSET', KEYS[1], 'k', ARGV[12]) end
redis.call('PEXPIRE', KEYS[1], ARGV[1])
local out = redis.call('HGETALL', KEYS[1])
table.insert(out, 1, res)
return out
`)

// Merge folds r into its message's record; see deliverystatus.Store.
func (s *Store) Merge(ctx context.Context, r deliverystatus.Record) (deliverystatus.Merged, error) {
	id := r.Status.MessageID
	if err := deliverystatus.CheckID(id); err != nil {
		return deliverystatus.Merged{}, err
	}
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	st := r.Status
	reply, err := mergeScript.Run(ctx, s.rdb, []string{s.Key(id)},
		s.ttl.Milliseconds(), string(st.State), st.State.Rank(), st.VendorStatus, string(st.Reason), st.VendorCode,
		ms(st.UpdatedAt), st.Segments, st.Price, st.PriceUnit, ms(r.SentAt), ms(r.CheckedAt)).StringSlice()
	if err != nil {
		return deliverystatus.Merged{}, fmt.Errorf("statusredis: merge: %w", err)
	}
	if len(reply) == 0 {
		return deliverystatus.Merged{}, errors.New("statusredis: merge: empty reply")
	}
	rec := parse(id, reply[1:])
	switch reply[0] {
	case "ignored":
		return deliverystatus.Merged{Record: rec}, nil
	case "confirmed":
		return deliverystatus.Merged{Record: rec}, nil
	case "advanced":
		return deliverystatus.Merged{Record: rec, Changed: true, BecameFinal: rec.Status.State.Final()}, nil
	}
	return deliverystatus.Merged{}, fmt.Errorf("statusredis: merge: unexpected reply %q", reply[0])
}

// Get returns the record of messageID, or nil.
func (s *Store) Get(ctx context.Context, messageID string) (*deliverystatus.Record, error) {
	if err := deliverystatus.CheckID(messageID); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	h, err := s.rdb.HGetAll(ctx, s.Key(messageID)).Result()
	if err != nil {
		return nil, fmt.Errorf("statusredis: get: %w", err)
	}
	if len(h) == 0 {
		return nil, nil
	}
	flat := make([]string, 0, 2*len(h))
	for k, v := range h {
		flat = append(flat, k, v)
	}
	rec := parse(messageID, flat)
	return &rec, nil
}

// parse reads a record from HGETALL's flat field, value list.
func parse(id string, flat []string) deliverystatus.Record {
	rec := deliverystatus.Record{Status: connector.MessageStatus{MessageID: id}}
	for i := 0; i+1 < len(flat); i += 2 {
		v := flat[i+1]
		switch flat[i] {
		case "s":
			rec.Status.State = connector.DeliveryState(v)
		case "v":
			rec.Status.VendorStatus = v
		case "r":
			rec.Status.Reason = connector.Reason(v)
		case "c":
			rec.Status.VendorCode = v
		case "u":
			rec.Status.UpdatedAt = fromMS(v)
		case "g":
			rec.Status.Segments, _ = strconv.Atoi(v)
		case "p":
			rec.Status.Price = v
		case "pu":
			rec.Status.PriceUnit = v
		case "t":
			rec.SentAt = fromMS(v)
		case "k":
			rec.CheckedAt = fromMS(v)
		}
	}
	return rec
}

// ms is t in Unix milliseconds, 0 for the zero time.
func ms(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixMilli()
}

// fromMS reads Unix milliseconds, "0" or garbage being the zero time.
func fromMS(v string) time.Time {
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n == 0 {
		return time.Time{}
	}
	return time.UnixMilli(n)
}
