package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/sms-connector/sms-connector/connector/twilio/twiliotest"
	smsv1 "github.com/sms-connector/sms-connector/gen/connector/sms/v1"
	"github.com/sms-connector/sms-connector/internal/testutil/redistest"
	"github.com/sms-connector/sms-connector/internal/testutil/testbin"
)

// These tests run several replicas of the built binary against one real redis-server (or a
// Redis Cluster) and one Twilio emulator in this process, the deployment of docs/replicas.md:
// the replicas must keep at-most-once and the guard's limits as if they were one process.

// replicaSecret is the guard key secret every replica shares (--guard-key-secret-file).
const replicaSecret = "replicas-share-this-guard-key-secret"

// widePolicy keeps the guard on with limits no test here reaches.
const widePolicy = `{"recipient":[{"max":1000,"window":"1h"}],"clientIP":[{"max":100000,"window":"1h"}],
"prefix":[{"max":100000,"window":"1h"}],"global":{"max":100000,"window":"1h"}}`

// tightPolicy has one small window per class, so that a short sequence exhausts each.
const tightPolicy = `{"recipient":[{"max":2,"window":"1h"}],"clientIP":[{"max":3,"window":"1h"}],
"prefix":[{"max":4,"window":"1h"}],"prefixDigits":4,"global":{"max":1000,"window":"1h"}}`

// replicas is a set of binaries started with the same flags.
type replicas struct {
	args    []string
	procs   []*testbin.Process
	clients []smsv1.SmsConnectorClient
}

// startReplicas starts n binaries sending to emu, with policy and store ("memory" or a Redis
// URL) and extra flags, and connects a client to each.
func startReplicas(t *testing.T, n int, emu *twiliotest.Server, policy, store string, extra ...string) *replicas {
	t.Helper()
	args := []string{"--config", twilioConfigFile(t), "--twilio-api-url", emu.URL, "--twilio-timeout", "2m",
		"--policy", writeFile(t, "policy.json", []byte(policy)), "--listen", "127.0.0.1:0", "--store", store}
	if store != "memory" {
		args = append(args, "--guard-key-secret-file", writeFile(t, "guard-secret", []byte(replicaSecret)))
	}
	r := &replicas{args: append(args, extra...)}
	for range n {
		r.start(t)
	}
	return r
}

// start starts one more replica.
func (r *replicas) start(t *testing.T) {
	t.Helper()
	p := startBinary(t, r.args...)
	_, c := clientTo(t, p.Addr, insecure.NewCredentials())
	r.procs = append(r.procs, p)
	r.clients = append(r.clients, c)
}

// restart kills replica i with SIGKILL and starts it again with the same flags, in its place.
func (r *replicas) restart(t *testing.T, i int) {
	t.Helper()
	r.procs[i].Kill(t)
	r.start(t)
	last := len(r.procs) - 1
	r.procs[i], r.clients[i] = r.procs[last], r.clients[last]
	r.procs, r.clients = r.procs[:last], r.clients[:last]
}

// stop stops every replica with SIGTERM, checking a clean exit.
func (r *replicas) stop(t *testing.T) {
	t.Helper()
	for _, p := range r.procs {
		p.Stop(t)
	}
}

// outcome sums up a SendMessage's result: "OK", or the code and reason, with the kind of
// window for RATE_LIMITED (the message's words before its first colon).
func outcome(err error) string {
	if err == nil {
		return "OK"
	}
	st := status.Convert(err)
	if r := reasonOf(err); r == "RATE_LIMITED" {
		return r + " " + strings.SplitN(st.Message(), ":", 2)[0]
	}
	return st.Code().String() + " " + reasonOf(err)
}

// hasRetryInfo reports whether err carries a google.rpc.RetryInfo.
func hasRetryInfo(err error) bool {
	for _, d := range status.Convert(err).Details() {
		if _, ok := d.(*errdetails.RetryInfo); ok {
			return true
		}
	}
	return false
}

// keyed is sendReq(to) with an idempotency key and a code of its own.
func keyed(to, key, code string) *smsv1.SendMessageRequest {
	r := sendReq(to)
	r.IdempotencyKey, r.Payload.Code = key, code
	return r
}

// assertNoPhoneNumbers fails when a key or value of the Redis nodes holds any of numbers, in
// E.164 or as bare digits.
func assertNoPhoneNumbers(t *testing.T, nodes []*redis.Client, numbers ...string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	seen := 0
	for _, rc := range nodes {
		iter := rc.Scan(ctx, 0, "*", 100).Iterator()
		for iter.Next(ctx) {
			k := iter.Val()
			var vals []string
			switch typ := rc.Type(ctx, k).Val(); typ {
			case "hash":
				for f, v := range rc.HGetAll(ctx, k).Val() {
					vals = append(vals, f, v)
				}
			case "string":
				vals = append(vals, rc.Get(ctx, k).Val())
			case "zset":
				vals = rc.ZRange(ctx, k, 0, -1).Val()
			default:
				t.Errorf("key %q of type %q: the scan cannot read it", k, typ)
			}
			seen++
			all := k + "\x00" + strings.Join(vals, "\x00")
			for _, n := range numbers {
				if strings.Contains(all, n) || strings.Contains(all, strings.TrimPrefix(n, "+")) {
					t.Errorf("Redis key %q holds the phone number %s: %q", k, n, vals)
				}
			}
		}
		if err := iter.Err(); err != nil {
			t.Fatal(err)
		}
	}
	if seen == 0 {
		t.Fatal("Redis holds no key: the scan proves nothing")
	}
}

// sameKeyOnce: 1,000 SendMessage calls with one idempotency key, spread over three replicas
// and all in flight at once, make exactly one message at the emulator and 1,000 identical
// answers.
func sameKeyOnce(t *testing.T, store string) {
	const calls = 1000
	emu := twiliotest.NewServer()
	defer emu.Close()
	emu.SetLatency(300 * time.Millisecond) // the first send is in flight while the others arrive
	r := startReplicas(t, 3, emu, widePolicy, store)

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute) // a guard against a hang
	defer cancel()
	req := keyed("+14155550100", "one-key-for-all", "246810")
	resps := make([]*smsv1.SendMessageResponse, calls)
	errs := make([]error, calls)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range calls {
		wg.Go(func() {
			<-start
			resps[i], errs[i] = r.clients[i%3].SendMessage(ctx, req)
		})
	}
	close(start)
	wg.Wait()
	for i := range calls {
		switch {
		case errs[i] != nil:
			t.Fatalf("call %d (replica %d): %v", i, i%3, errs[i])
		case !proto.Equal(resps[i], resps[0]):
			t.Fatalf("call %d answered %v, call 0 %v", i, resps[i], resps[0])
		}
	}
	msgs := emu.Messages()
	if len(msgs) != 1 || emu.Requests() != 1 || msgs[0].Sid != resps[0].MessageId {
		t.Fatalf("the emulator got %d requests and accepted %v; want exactly the one answered (%s)", emu.Requests(), msgs, resps[0].MessageId)
	}
	r.stop(t)
}

// limitsStep is one send of limitsSequence and the outcome a single process gives it.
type limitsStep struct {
	to, ip, want string
}

// limitsSequence exhausts tightPolicy's recipient, range and client IP windows in turn, each
// refusal caused by one window only. Ranges: +1415555…, +1212555…, +1312555….
var limitsSequence = []limitsStep{
	{"+14155550100", "203.0.113.1", "OK"},
	{"+14155550100", "203.0.113.1", "OK"},
	{"+14155550100", "203.0.113.1", "RATE_LIMITED too many SMS to this recipient"},
	{"+14155550101", "203.0.113.2", "OK"},
	{"+14155550102", "203.0.113.3", "OK"},
	{"+14155550103", "203.0.113.4", "RATE_LIMITED too many SMS to numbers of the recipient's range (+1…, all but the last 4 digits alike)"},
	{"+12125550100", "203.0.113.5", "OK"},
	{"+12125550101", "203.0.113.5", "OK"},
	{"+13125550100", "203.0.113.5", "OK"},
	{"+13125550101", "203.0.113.5", "RATE_LIMITED too many SMS requested from this client IP address"},
}

// runLimits sends limitsSequence one at a time, round-robin over clients, and returns each
// send's outcome and the messages the emulator accepted.
func runLimits(t *testing.T, store string, replicaCount int) (outcomes []string, accepted int) {
	t.Helper()
	emu := twiliotest.NewServer()
	defer emu.Close()
	r := startReplicas(t, replicaCount, emu, tightPolicy, store)
	for i, s := range limitsSequence {
		req := sendReq(s.to)
		req.ClientIp = s.ip
		_, err := r.clients[i%len(r.clients)].SendMessage(rpcCtx(t), req)
		outcomes = append(outcomes, outcome(err))
	}
	r.stop(t)
	return outcomes, len(emu.Messages())
}

// limitsAsOneProcess: the same sequence against one replica with the memory store and three
// replicas sharing store gives the same outcomes, send by send, and the same count at the
// emulator.
func limitsAsOneProcess(t *testing.T, store string) {
	one, oneSent := runLimits(t, "memory", 1)
	three, threeSent := runLimits(t, store, 3)
	want := 0
	for i, s := range limitsSequence {
		if one[i] != s.want {
			t.Errorf("one process, send %d (%s from %s): %s, want %s", i, s.to, s.ip, one[i], s.want)
		}
		if three[i] != one[i] {
			t.Errorf("three replicas, send %d (%s from %s): %s; one process: %s", i, s.to, s.ip, three[i], one[i])
		}
		if s.want == "OK" {
			want++
		}
	}
	if oneSent != want || threeSent != oneSent {
		t.Errorf("the emulator accepted %d messages from one process and %d from three replicas; want %d", oneSent, threeSent, want)
	}
}

func TestReplicasSameKeySendsOnce(t *testing.T) {
	rs := redistest.Start(t)
	sameKeyOnce(t, rs.URL())
	assertNoPhoneNumbers(t, []*redis.Client{rs.Client()}, "+14155550100")
}

func TestReplicasLimitsAsOneProcess(t *testing.T) {
	limitsAsOneProcess(t, redistest.Start(t).URL())
}

func TestReplicasRedisCluster(t *testing.T) {
	c := redistest.StartCluster(t, 3)
	t.Run("same key sends once", func(t *testing.T) { sameKeyOnce(t, c.URL()) })
	t.Run("limits as one process", func(t *testing.T) { limitsAsOneProcess(t, c.URL()) })
}

// TestReplicasKilledAndRestarted: a replica killed with SIGKILL and started again gives a
// retried key the first answer, and the limits exhausted before stay exhausted.
func TestReplicasKilledAndRestarted(t *testing.T) {
	rs := redistest.Start(t)
	emu := twiliotest.NewServer()
	defer emu.Close()
	r := startReplicas(t, 3, emu, tightPolicy, rs.URL())
	send := func(i int, req *smsv1.SendMessageRequest) (*smsv1.SendMessageResponse, error) {
		return r.clients[i].SendMessage(rpcCtx(t), req)
	}
	const x, y, z, ip = "+14155550199", "+12125550199", "+13125550199", "198.51.100.7"

	first, err := send(0, keyed("+13125550111", "kept-across-restarts", "135790"))
	if err != nil {
		t.Fatal(err)
	}
	steps := []struct {
		replica int
		to, ip  string
		want    string
	}{
		{1, x, ip, "OK"},
		{2, x, ip, "OK"}, // x's recipient window is full
		{0, y, ip, "OK"}, // ip's window is full
		{0, x, "198.51.100.8", "RATE_LIMITED too many SMS to this recipient"},
	}
	for _, s := range steps {
		req := sendReq(s.to)
		req.ClientIp = s.ip
		if _, err := send(s.replica, req); outcome(err) != s.want {
			t.Fatalf("before the restart, %s from %s on replica %d: %v, want %s", s.to, s.ip, s.replica, err, s.want)
		}
	}

	r.restart(t, 0)
	for _, i := range []int{0, 1} {
		again, err := send(i, keyed("+13125550111", "kept-across-restarts", "135790"))
		if err != nil || !proto.Equal(again, first) {
			t.Errorf("retried key on replica %d after the restart: %v, %v; want the first answer %v", i, again, err, first)
		}
	}
	for _, s := range []struct{ to, ip, want string }{
		{x, "198.51.100.9", "RATE_LIMITED too many SMS to this recipient"},
		{z, ip, "RATE_LIMITED too many SMS requested from this client IP address"},
	} {
		req := sendReq(s.to)
		req.ClientIp = s.ip
		if _, err := send(0, req); outcome(err) != s.want {
			t.Errorf("after the restart, %s from %s: %v, want %s", s.to, s.ip, err, s.want)
		}
	}
	if n := len(emu.Messages()); n != 4 {
		t.Errorf("the emulator accepted %d messages, want 4 (the keyed one, two to x, one to y)", n)
	}
	r.stop(t)
	assertNoPhoneNumbers(t, []*redis.Client{rs.Client()}, x, y, z, "+13125550111")
}

// outageCall is one SendMessage of TestReplicasRedisOutage.
type outageCall struct {
	keyed  bool
	during bool // began after Redis had stopped
	code   string
	err    error
}

// TestReplicasRedisOutage: Redis stops while three replicas serve keyed and unkeyed sends.
// Every call answers, before its deadline, with the status docs/replicas.md documents for the
// policy; no keyed send reaches the emulator twice; once Redis is back, every replica serves
// again without a restart.
func TestReplicasRedisOutage(t *testing.T) {
	for _, policy := range []string{"refuse", "allow"} {
		t.Run(policy, func(t *testing.T) {
			rs := redistest.Start(t)
			emu := twiliotest.NewServer()
			defer emu.Close()
			r := startReplicas(t, 3, emu, widePolicy, rs.URL(), "--store-unavailable", policy)

			var (
				mu      sync.Mutex
				calls   []outageCall
				next    atomic.Int64
				ok      atomic.Int64
				stopped atomic.Bool
				quit    = make(chan struct{})
				wg      sync.WaitGroup
			)
			call := func(replica int, req *smsv1.SendMessageRequest) {
				during := stopped.Load()
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				defer cancel()
				_, err := r.clients[replica].SendMessage(ctx, req)
				if err == nil {
					ok.Add(1)
				}
				mu.Lock()
				calls = append(calls, outageCall{keyed: req.IdempotencyKey != "", during: during, code: req.Payload.Code, err: err})
				mu.Unlock()
			}
			for range 6 {
				wg.Go(func() {
					for {
						select {
						case <-quit:
							return
						default:
						}
						i := int(next.Add(1))
						code := fmt.Sprintf("%06d", i)
						to := fmt.Sprintf("+1415555%04d", i%10000)
						if i%2 == 1 {
							req := sendReq(to)
							req.Payload.Code = code
							call(i%3, req)
							continue
						}
						// A keyed send and its retry on another replica, at once.
						req := keyed(to, "outage-"+code, code)
						var pair sync.WaitGroup
						pair.Go(func() { call(i%3, req) })
						pair.Go(func() { call((i+1)%3, req) })
						pair.Wait()
					}
				})
			}
			waitFor(t, "30 successful sends before the outage", func() bool { return ok.Load() >= 30 })
			rs.Stop()
			stopped.Store(true)
			before := next.Load()
			waitFor(t, "60 calls during the outage", func() bool { return next.Load() >= before+60 })
			close(quit)
			wg.Wait()

			duringCount := 0
			for _, c := range calls {
				got := outcome(c.err)
				if c.err != nil && (got != "Unavailable STORE_UNAVAILABLE" || !hasRetryInfo(c.err)) {
					t.Errorf("call (keyed %v) answered %v; want OK or UNAVAILABLE STORE_UNAVAILABLE with RetryInfo", c.keyed, c.err)
					continue
				}
				if !c.during {
					continue
				}
				duringCount++
				want := "Unavailable STORE_UNAVAILABLE"
				if policy == "allow" && !c.keyed {
					want = "OK"
				}
				if got != want {
					t.Errorf("during the outage, a call (keyed %v) under %s answered %s, want %s", c.keyed, policy, got, want)
				}
			}
			if duringCount == 0 {
				t.Fatal("no call began during the outage: the test proves nothing")
			}
			bodies := map[string]int{}
			for _, m := range emu.Messages() {
				bodies[m.Body]++
			}
			for body, n := range bodies {
				if n > 1 {
					t.Errorf("%q reached the emulator %d times", body, n)
				}
			}

			rs.Restart()
			for i := range r.clients {
				code := fmt.Sprintf("9%05d", i)
				for _, req := range []*smsv1.SendMessageRequest{sendReq(fmt.Sprintf("+1212555%04d", i)), keyed(fmt.Sprintf("+1312555%04d", i), "after-"+code, code)} {
					var err error
					waitFor(t, "a send after Redis restarted", func() bool {
						_, err = r.clients[i].SendMessage(rpcCtx(t), req)
						return outcome(err) != "Unavailable STORE_UNAVAILABLE"
					})
					if err != nil {
						t.Errorf("replica %d after Redis restarted (keyed %v): %v", i, req.IdempotencyKey != "", err)
					}
				}
			}
			r.stop(t)
			for i, p := range r.procs {
				logs := p.Logs.String()
				if !strings.Contains(logs, `"msg":"shared store failed"`) {
					t.Errorf("replica %d did not log the store's failure", i)
				}
				assertJSONLines(t, logs)
			}
		})
	}
}

// waitFor polls cond until it holds, failing the test after a minute (a guard against a hang).
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("waited a minute for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// assertJSONLines fails when a line of logs is not a JSON object: the binary's own lines are,
// and a library writing plain text to stderr would break a log pipeline.
func assertJSONLines(t *testing.T, logs string) {
	t.Helper()
	sc := bufio.NewScanner(strings.NewReader(logs))
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	bad := 0
	for sc.Scan() {
		var v map[string]any
		if json.Unmarshal(sc.Bytes(), &v) != nil {
			if bad++; bad <= 3 {
				t.Errorf("a log line is not JSON: %q", sc.Text())
			}
		}
	}
	if bad > 3 {
		t.Errorf("and %d more lines that are not JSON", bad-3)
	}
}

// TestReplicasClaimHolderKilled: a replica killed (SIGKILL) while its send waits on Twilio
// holds the key's claim; once the lease ends, the key retried on another replica answers
// PROVIDER_OUTCOME_UNKNOWN and nothing more is sent. It waits out the default lease (10 s).
func TestReplicasClaimHolderKilled(t *testing.T) {
	rs := redistest.Start(t)
	emu := twiliotest.NewServer()
	defer emu.Close()
	emu.SetLatency(time.Minute) // the send waits on "Twilio" until its replica dies
	r := startReplicas(t, 3, emu, widePolicy, rs.URL())
	req := keyed("+14155550142", "held-by-the-dead", "112233")

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	lost := make(chan error, 1)
	go func() {
		_, err := r.clients[0].SendMessage(ctx, req)
		lost <- err
	}()
	waitFor(t, "the send to reach the emulator", func() bool { return emu.Requests() == 1 })
	r.procs[0].Kill(t)
	if err := <-lost; err == nil {
		t.Fatal("the killed replica answered its send")
	}
	emu.SetLatency(0) // a second send would be accepted at once and counted

	for _, i := range []int{1, 2} {
		rctx, rcancel := context.WithTimeout(context.Background(), time.Minute) // longer than the lease
		_, err := r.clients[i].SendMessage(rctx, req)
		rcancel()
		if status.Code(err) != codes.Unavailable || reasonOf(err) != "PROVIDER_OUTCOME_UNKNOWN" {
			t.Errorf("retry on replica %d: %v; want UNAVAILABLE PROVIDER_OUTCOME_UNKNOWN", i, err)
		}
	}
	if n, m := emu.Requests(), len(emu.Messages()); n != 1 || m != 0 {
		t.Errorf("the emulator got %d requests and accepted %d messages; want the killed one only (1, 0)", n, m)
	}
	r.procs[1].Stop(t)
	r.procs[2].Stop(t)
}

// TestReplicasRedisTLSAndPassword: replicas reach Redis over TLS (rediss://, a private CA)
// with a password file; sends work and are shared, and no line the binaries write at debug
// level, through an outage too, holds the password.
func TestReplicasRedisTLSAndPassword(t *testing.T) {
	const password = "Redis-Pa55word-never-in-a-log-91"
	rs := redistest.Start(t, redistest.WithTLS(), redistest.WithPassword(password))
	emu := twiliotest.NewServer()
	defer emu.Close()
	r := startReplicas(t, 2, emu, widePolicy, rs.URL(), "--store-password-file", rs.PasswordFile,
		"--store-ca-file", rs.CAFile, "--log-level", "debug")

	req := keyed("+14155550177", "over-tls", "445566")
	first, err := r.clients[0].SendMessage(rpcCtx(t), req)
	if err != nil {
		t.Fatal(err)
	}
	if again, err := r.clients[1].SendMessage(rpcCtx(t), req); err != nil || !proto.Equal(again, first) {
		t.Errorf("the retry on the other replica: %v, %v; want %v", again, err, first)
	}
	if _, err := r.clients[1].SendMessage(rpcCtx(t), sendReq("+14155550178")); err != nil {
		t.Error(err)
	}
	if n := len(emu.Messages()); n != 2 {
		t.Errorf("the emulator accepted %d messages, want 2", n)
	}
	n, err := rs.Client().DBSize(rpcCtx(t)).Result()
	if err != nil || n == 0 {
		t.Errorf("Redis holds %d keys (%v): the replicas did not use it", n, err)
	}
	rs.Stop() // failures to dial and their log lines, too
	if _, err := r.clients[0].SendMessage(rpcCtx(t), sendReq("+14155550179")); outcome(err) != "Unavailable STORE_UNAVAILABLE" {
		t.Errorf("with Redis stopped: %v, want STORE_UNAVAILABLE", err)
	}
	r.stop(t)
	for _, p := range r.procs {
		logs := p.Logs.String()
		if !strings.Contains(logs, `"level":"debug"`) || !strings.Contains(logs, `"msg":"store: redis"`) {
			t.Errorf("the log lacks debug lines or the store's line:\n%s", logs)
		}
		assertNoSecrets(t, logs, password)
		assertJSONLines(t, logs)
	}
}

// commandCalls reads INFO commandstats: calls by command name ("evalsha").
func commandCalls(t *testing.T, rc *redis.Client) map[string]int {
	t.Helper()
	info, err := rc.Info(rpcCtx(t), "commandstats").Result()
	if err != nil {
		t.Fatal(err)
	}
	calls := map[string]int{}
	for line := range strings.SplitSeq(info, "\n") {
		name, rest, ok := strings.Cut(strings.TrimSpace(line), ":calls=")
		if !ok {
			continue
		}
		n := 0
		fmt.Sscanf(rest, "%d", &n)
		calls[strings.TrimPrefix(name, "cmdstat_")] = n
	}
	return calls
}

// memoryUsage sums MEMORY USAGE over every key of rc.
func memoryUsage(t *testing.T, rc *redis.Client) (bytes int64, keys int) {
	t.Helper()
	ctx := rpcCtx(t)
	iter := rc.Scan(ctx, 0, "*", 100).Iterator()
	for iter.Next(ctx) {
		n, err := rc.MemoryUsage(ctx, iter.Val()).Result()
		if err != nil {
			t.Fatal(err)
		}
		bytes += n
		keys++
	}
	return bytes, keys
}

// TestReplicasRedisRoundTrips counts, with INFO commandstats, the commands one replica sends
// Redis per send under the default policy: one script call for the guard (all its windows)
// and, with an idempotency key, two for idempotency (the claim before the send, the answer
// after). Without --public-url no status callback follows, so the status store records
// nothing per send. Scripts' own commands are counted by Redis too, so the test counts script calls
// (EVALSHA, EVAL) and requires that nothing else was sent. Its log gives the bytes in Redis
// per send (MEMORY USAGE over every key), the figures of docs/replicas.md.
func TestReplicasRedisRoundTrips(t *testing.T) {
	rs := redistest.Start(t)
	rc := rs.Client()
	emu := twiliotest.NewServer()
	defer emu.Close()
	p := startBinary(t, "--config", twilioConfigFile(t), "--twilio-api-url", emu.URL, "--listen", "127.0.0.1:0",
		"--store", rs.URL(), "--guard-key-secret-file", writeFile(t, "guard-secret", []byte(replicaSecret)))
	_, client := clientTo(t, p.Addr, insecure.NewCredentials())
	n := 0
	send := func(withKey bool) {
		t.Helper()
		n++
		req := sendReq(fmt.Sprintf("+1415555%04d", n)) // default policy: a new recipient each time
		req.ClientIp = "198.51.100.20"
		if withKey {
			req.IdempotencyKey = fmt.Sprint("round-trips-", n)
		}
		if _, err := client.SendMessage(rpcCtx(t), req); err != nil {
			t.Fatalf("send %d: %v", n, err)
		}
	}
	send(true) // loads the scripts
	first, _ := memoryUsage(t, rc)
	const sends = 4
	for _, withKey := range []bool{true, false} {
		if err := rc.ConfigResetStat(rpcCtx(t)).Err(); err != nil {
			t.Fatal(err)
		}
		for range sends {
			send(withKey)
		}
		calls := commandCalls(t, rc)
		scripts := calls["evalsha"] + calls["eval"]
		want := 1 // the guard
		if withKey {
			want = 3 // and the idempotency claim and answer
		}
		if scripts != want*sends {
			t.Errorf("with a key %v: %d script calls for %d sends, want %d per send (%v)", withKey, scripts, sends, want, calls)
		}
		for cmd := range calls {
			switch cmd {
			case "evalsha", "eval", "config|resetstat", "info":
			case "zadd", "zremrangebyscore", "zcard", "zrange", "zrem", "pexpire", "pttl", "set", "exists", "get",
				"hmget", "hset", "hsetnx", "hgetall", "hdel", "del", "time": // called by the scripts (counted by Redis too)
			default:
				t.Errorf("with a key %v: the replica sent %s (%d calls) besides its scripts", withKey, cmd, calls[cmd])
			}
		}
		t.Logf("with a key %v: %d script calls per send: %v", withKey, scripts/sends, calls)
	}
	all, keys := memoryUsage(t, rc)
	t.Logf("Redis MEMORY USAGE: %d bytes after the first send (keyed); %d bytes in %d keys after %d sends (%d keyed), %d bytes per send after the first",
		first, all, keys, 1+2*sends, 1+sends, (all-first)/(2*sends))
	p.Stop(t)
}
