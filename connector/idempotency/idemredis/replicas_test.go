package idemredis_test

import (
	"context"
	"errors"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/sms-connector/sms-connector/connector"
	"github.com/sms-connector/sms-connector/connector/idempotency"
	"github.com/sms-connector/sms-connector/connector/idempotency/idemredis"
)

// replica is one replica's idempotency layer: its own client and Store on the shared Redis.
func replica(t *testing.T, srv *redisServer, v connector.SmsConnector, o idemredis.Options) (*idempotency.Connector, redis.UniversalClient) {
	t.Helper()
	rdb := srv.Client()
	s, err := idemredis.New(rdb, o)
	if err != nil {
		t.Fatal(err)
	}
	c, err := idempotency.New(v, idempotency.Options{Store: s})
	if err != nil {
		t.Fatal(err)
	}
	return c, rdb
}

// TestThreeReplicasThousandDuplicates sends one message 1,000 times at once with the same
// key, spread over three replicas on one Redis and one vendor whose send takes 50 ms: exactly
// one vendor call and 1,000 identical receipts; a later request gets the stored receipt.
func TestThreeReplicasThousandDuplicates(t *testing.T) {
	srv := startRedis(t)
	v := &vendor{delay: 50 * time.Millisecond}
	var replicas []*idempotency.Connector
	for range 3 {
		c, _ := replica(t, srv, v, idemredis.Options{})
		replicas = append(replicas, c)
	}
	const n = 1000
	receipts := make([]*connector.Receipt, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			receipts[i], errs[i] = replicas[i%3].Send(ctx, msg(idemKey))
		})
	}
	wg.Wait()
	if v.Calls() != 1 {
		t.Fatalf("%d vendor calls, want 1", v.Calls())
	}
	want := connector.Receipt{MessageID: "SM1", Status: "queued", To: phone, Segments: 1, Encoding: connector.EncodingGSM7}
	for i := range n {
		if errs[i] != nil || *receipts[i] != want {
			t.Fatalf("send %d: %+v, %v; want %+v", i, receipts[i], errs[i], want)
		}
	}
	for _, c := range replicas {
		if r, err := c.Send(context.Background(), msg(idemKey)); err != nil || *r != want {
			t.Errorf("later request: %+v, %v; want %+v", r, err, want)
		}
	}
	if v.Calls() != 1 {
		t.Errorf("%d vendor calls, want 1", v.Calls())
	}
}

// TestDeadReplicaOutcomeUnknown: a replica that holds a claim and loses Redis for good (its
// client is gone, as when its process is killed) leaves its key pending; once the lease ends,
// another replica answers PROVIDER_OUTCOME_UNKNOWN for the window and sends nothing, also
// after the dead replica's send ends.
func TestDeadReplicaOutcomeUnknown(t *testing.T) {
	srv := startRedis(t)
	v := gated(&vendor{})
	const lease = 100 * time.Millisecond
	dead, deadClient := replica(t, srv, v, idemredis.Options{Lease: lease})
	alive, rdb := replica(t, srv, v, idemredis.Options{Lease: lease})
	deadDone := make(chan error, 1)
	go func() {
		_, err := dead.Send(context.Background(), msg(idemKey))
		deadDone <- err
	}()
	<-v.started
	if err := deadClient.Close(); err != nil { // the replica is gone: no renewal, no answer
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, when := range []string{"after the lease", "again"} {
		_, err := alive.Send(ctx, msg(idemKey))
		if connector.ReasonOf(err) != connector.ReasonProviderOutcomeUnknown {
			t.Errorf("%s: %v, want PROVIDER_OUTCOME_UNKNOWN", when, err)
		}
	}
	close(v.gate)
	if err := <-deadDone; err != nil {
		t.Errorf("the dead replica's own caller: %v, want its receipt", err)
	}
	if _, err := alive.Send(ctx, msg(idemKey)); connector.ReasonOf(err) != connector.ReasonProviderOutcomeUnknown {
		t.Errorf("after the dead replica's send ended: %v, want PROVIDER_OUTCOME_UNKNOWN", err)
	}
	if v.Calls() != 1 {
		t.Errorf("%d vendor calls, want 1", v.Calls())
	}
	keys := srv.Keys(ctx, rdb)
	if len(keys) != 1 {
		t.Fatalf("keys %q, want 1", keys)
	}
	if ttl := rdb.PTTL(ctx, keys[0]).Val(); ttl <= 0 || ttl > idempotency.DefaultWindow {
		t.Errorf("the unknown answer's TTL is %v, want at most the window", ttl)
	}
}

// TestLeaseRenewed: a send that lasts several leases keeps its claim: a duplicate waits and
// gets its receipt, not PROVIDER_OUTCOME_UNKNOWN.
func TestLeaseRenewed(t *testing.T) {
	srv := startRedis(t)
	v := &vendor{delay: 400 * time.Millisecond}
	a, _ := replica(t, srv, v, idemredis.Options{Lease: 60 * time.Millisecond})
	b, _ := replica(t, srv, v, idemredis.Options{Lease: 60 * time.Millisecond})
	first := make(chan *connector.Receipt, 1)
	go func() {
		r, err := a.Send(context.Background(), msg(idemKey))
		if err != nil {
			t.Error(err)
		}
		first <- r
	}()
	for v.Calls() == 0 {
		time.Sleep(time.Millisecond)
	}
	r, err := b.Send(context.Background(), msg(idemKey))
	if err != nil || r.MessageID != "SM1" {
		t.Errorf("duplicate: %+v, %v; want SM1", r, err)
	}
	<-first
	if v.Calls() != 1 {
		t.Errorf("%d vendor calls, want 1", v.Calls())
	}
}

// TestRedisStoppedAndRestarted: with Redis down, a keyed send is refused with
// STORE_UNAVAILABLE and a RetryAfter, within its deadline, and reaches no vendor; an unkeyed
// send goes through. Once Redis is back, the same clients work again.
func TestRedisStoppedAndRestarted(t *testing.T) {
	srv := startRedis(t)
	v := &vendor{}
	c, _ := replica(t, srv, v, idemredis.Options{})
	srv.Stop()
	for _, deadline := range []time.Duration{5 * time.Second, 50 * time.Millisecond} {
		ctx, cancel := context.WithTimeout(context.Background(), deadline)
		_, err := c.Send(ctx, msg(idemKey))
		ctxErr := ctx.Err()
		cancel()
		var ce *connector.Error
		switch {
		case errors.As(err, &ce) && ce.Reason == connector.ReasonStoreUnavailable:
			if ce.RetryAfter <= 0 || strings.Contains(ce.Message, "127.0.0.1") {
				t.Errorf("refusal %+v: want a RetryAfter and no address in the message", ce)
			}
		case ctxErr != nil && connector.ReasonOf(err) == connector.ReasonProviderTimeout:
			// the deadline passed first: answered as a deadline, not a hang
		default:
			t.Errorf("deadline %v: %v, want STORE_UNAVAILABLE", deadline, err)
		}
	}
	if v.Calls() != 0 {
		t.Fatalf("%d vendor calls with Redis down, want 0", v.Calls())
	}
	if _, err := c.Send(context.Background(), msg("")); err != nil || v.Calls() != 1 {
		t.Errorf("unkeyed send with Redis down: %v, %d calls", err, v.Calls())
	}
	srv.Start()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	r, err := c.Send(ctx, msg(idemKey))
	if err != nil {
		t.Fatalf("after Redis restarted: %v", err)
	}
	if again, err := c.Send(ctx, msg(idemKey)); err != nil || *again != *r || v.Calls() != 2 {
		t.Errorf("duplicate after the restart: %+v, %v, %d calls", again, err, v.Calls())
	}
}

// TestKeysHaveTTLAndNoPlainText: every key the store writes, pending, answered, shared or
// unknown, has a TTL, is one hash tag of a SHA-256 under the prefix, and holds no phone
// number (not even a stored receipt's recipient), idempotency key, tenant secret or error
// cause in its name or fields.
func TestKeysHaveTTLAndNoPlainText(t *testing.T) {
	srv := startRedis(t)
	ctx := context.Background()
	v := gated(&vendor{answer: func(call int) (*connector.Receipt, error) {
		switch call {
		case 2:
			return nil, &connector.Error{Reason: connector.ReasonRecipientOptedOut, Message: "opted out", Err: errors.New("cause with " + authToken)}
		case 3:
			return nil, connector.Errorf(connector.ReasonProviderRateLimited, "429")
		}
		return &connector.Receipt{MessageID: "SM1", To: phone, Status: "queued"}, nil
	}})
	c, rdb := replica(t, srv, v, idemredis.Options{Lease: 500 * time.Millisecond})
	done := make(chan struct{})
	var wg sync.WaitGroup
	for _, key := range []string{idemKey, idemKey + "-error", idemKey + "-shared", idemKey + "-pending"} {
		wg.Go(func() { _, _ = c.Send(ctx, msg(key)) })
		<-v.started
		if key != idemKey+"-pending" {
			v.gate <- struct{}{}
		}
	}
	go func() { wg.Wait(); close(done) }()
	time.Sleep(100 * time.Millisecond) // the first three are settled
	keys := srv.Keys(ctx, rdb)
	if len(keys) != 4 {
		t.Errorf("%d keys %q, want 4 (answered, error, shared, pending)", len(keys), keys)
	}
	name := regexp.MustCompile(`^sms:idem:\{[0-9a-f]{64}\}$`)
	for _, k := range keys {
		if !name.MatchString(k) {
			t.Errorf("key %q is not the prefix and a hash tag of a SHA-256", k)
		}
		if ttl := rdb.PTTL(ctx, k).Val(); ttl <= 0 {
			t.Errorf("key %q has no TTL (%v)", k, ttl)
		}
		fields := rdb.HGetAll(ctx, k).Val()
		for f, val := range fields {
			for _, plain := range []string{phone, "4155550123", idemKey, authToken, "cause"} {
				if strings.Contains(val, plain) {
					t.Errorf("key %q field %s holds %q in clear: %q", k, f, plain, val)
				}
			}
		}
		if usage, err := rdb.MemoryUsage(ctx, k).Result(); err == nil {
			t.Logf("%s state %s: %d bytes", k, fields["s"], usage)
		}
	}
	close(v.gate)
	<-done
}
