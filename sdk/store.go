package sdk

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"

	"github.com/sms-connector/sms-connector/connector/deliverystatus"
	"github.com/sms-connector/sms-connector/connector/deliverystatus/statusredis"
	"github.com/sms-connector/sms-connector/connector/guard/guardredis"
	"github.com/sms-connector/sms-connector/connector/idempotency/idemredis"
	"github.com/sms-connector/sms-connector/internal/redisconn"
	"github.com/sms-connector/sms-connector/telemetry"
)

// The values of --store-unavailable.
const (
	// StoreRefuse refuses a send whose layer cannot reach the shared store (STORE_UNAVAILABLE,
	// UNAVAILABLE, with RetryInfo): nothing is sent.
	StoreRefuse = "refuse"
	// StoreAllow lets the send go on without that layer: its limits do not hold while the
	// store is down.
	StoreAllow = "allow"
)

// minGuardSecret is the shortest --guard-key-secret-file content accepted, in bytes.
const minGuardSecret = 16

// storeOptions are the shared-store flags.
type storeOptions struct {
	url             string // --store: "memory" or a Redis URL
	passwordFile    string // --store-password-file
	caFile          string // --store-ca-file
	unavailable     string // --store-unavailable: refuse or allow
	guardSecretFile string // --guard-key-secret-file
}

// register adds the flags to fs.
func (s *storeOptions) register(fs *flag.FlagSet) {
	fs.StringVar(&s.url, "store", redisconn.Memory, `where idempotency answers and the abuse guard's windows live: "memory" (this process only) or a Redis URL shared by every replica: redis://[user@]host:port[/db], rediss://... for TLS, redis://host1:port?addr=host2:port&addr=host3:port for Redis Cluster (see docs/replicas.md)`)
	fs.StringVar(&s.passwordFile, "store-password-file", "", "file holding the Redis password (trimmed; never logged; a password in the --store URL is refused)")
	fs.StringVar(&s.caFile, "store-ca-file", "", "PEM file of the CA a rediss:// server's certificate must chain to (default: the system's roots)")
	fs.StringVar(&s.unavailable, "store-unavailable", StoreRefuse, "when Redis cannot be reached: refuse (the send answers UNAVAILABLE STORE_UNAVAILABLE, nothing is sent) or allow (the send goes on without that layer's limits)")
	fs.StringVar(&s.guardSecretFile, "guard-key-secret-file", "", "file holding the secret (at least 16 bytes) the abuse guard hashes numbers and addresses with in its store keys; required with a Redis --store, the same on every replica (default with memory: random per process)")
}

// redis reports whether the flags name a Redis store.
func (s *storeOptions) redis() bool { return s.url != redisconn.Memory }

// check validates the flags without reading a file or connecting.
func (s *storeOptions) check(guardOn bool) error {
	if s.unavailable != StoreRefuse && s.unavailable != StoreAllow {
		return fmt.Errorf("--store-unavailable %q: want %s or %s", s.unavailable, StoreRefuse, StoreAllow)
	}
	if !s.redis() {
		if s.passwordFile != "" || s.caFile != "" {
			return errors.New("--store-password-file and --store-ca-file configure a Redis --store: give --store a redis:// or rediss:// URL, or drop them")
		}
		return nil
	}
	if err := redisconn.Check(redisconn.Options{URL: s.url, PasswordFile: s.passwordFile, CAFile: s.caFile}); err != nil {
		return err
	}
	if guardOn && s.guardSecretFile == "" {
		return errors.New("--store names Redis: give --guard-key-secret-file, the same file on every replica, so that replicas count a number under the same key (without it each process hashes with a random secret and the limits are per process)")
	}
	return nil
}

// storeErrors counts and logs the failures of the shared store: each one in the metric, at
// most one log line per layer every storeErrorLogEvery.
type storeErrors struct {
	log     *zap.Logger
	policy  string
	metrics *telemetry.Metrics // nil: no metrics; set before serving

	mu     sync.Mutex
	last   map[string]time.Time // by layer
	missed map[string]int       // errors not logged since
}

// storeErrorLogEvery is the least time between two log lines of one layer's store errors.
const storeErrorLogEvery = 10 * time.Second

// reporter returns the function a layer calls with each store failure.
func (e *storeErrors) reporter(layer, policy string) func(error) {
	return func(err error) {
		e.metrics.StoreError(layer, policy)
		now := time.Now()
		e.mu.Lock()
		if now.Sub(e.last[layer]) < storeErrorLogEvery {
			e.missed[layer]++
			e.mu.Unlock()
			return
		}
		missed := e.missed[layer]
		e.last[layer], e.missed[layer] = now, 0
		e.mu.Unlock()
		e.log.Warn("shared store failed", zap.String("layer", layer), zap.String("policy", policy),
			zap.Int("more_failures_not_logged", missed), zap.Error(err))
	}
}

// openStore opens the Redis client o names (nil for memory), and fills d's guard with its
// Redis store and failure policy, and d's delivery statuses with their store (in memory, or
// in Redis). The caller closes the client after the server has stopped; it is also where the
// idempotency layer's Redis store is built on.
func openStore(ctx context.Context, o *options, d *Defences, log *zap.Logger) (redis.UniversalClient, *storeErrors, error) {
	errs := &storeErrors{log: log, policy: o.store.unavailable, last: map[string]time.Time{}, missed: map[string]int{}}
	// A status store that cannot be reached costs the answer from it, never a send.
	d.DeliveryStatus.OnStoreError = errs.reporter("status", StoreAllow)
	// Sends are recorded only when the vendor will call back; otherwise a status is fetched.
	d.DeliveryStatus.RecordSends = o.publicURL != ""
	if !o.store.redis() {
		m, err := deliverystatus.NewMemory(deliverystatus.MemoryOptions{TTL: o.statusTTL})
		if err != nil {
			return nil, nil, err
		}
		d.DeliveryStatus.Store = m
		return nil, errs, nil // logDefences says so
	}
	var secret []byte
	if d.Guard {
		raw, err := os.ReadFile(o.store.guardSecretFile)
		if err != nil {
			return nil, nil, fmt.Errorf("--guard-key-secret-file: %w", err)
		}
		if secret = []byte(strings.TrimSpace(string(raw))); len(secret) < minGuardSecret {
			return nil, nil, fmt.Errorf("--guard-key-secret-file %s: %d bytes, want at least %d", o.store.guardSecretFile, len(secret), minGuardSecret)
		}
	}
	c, err := redisconn.Open(ctx, redisconn.Options{URL: o.store.url, PasswordFile: o.store.passwordFile, CAFile: o.store.caFile})
	if err != nil {
		return nil, nil, err
	}
	if d.Guard {
		gs, err := guardredis.New(c, guardredis.Options{})
		if err != nil {
			_ = c.Close()
			return nil, nil, err
		}
		d.GuardOptions.Store = gs
		d.GuardOptions.KeySecret = secret
		d.GuardOptions.FailOpen = o.store.unavailable == StoreAllow
		d.GuardOptions.OnStoreError = errs.reporter("guard", o.store.unavailable)
	}
	if d.IdempotencyWindow > 0 {
		// Keyed sends are refused while Redis is down whatever --store-unavailable says:
		// sending one unclaimed could send it twice.
		is, err := idemredis.New(c, idemredis.Options{})
		if err != nil {
			_ = c.Close()
			return nil, nil, err
		}
		d.IdempotencyStore = is
		d.IdempotencyOnStoreError = errs.reporter("idempotency", StoreRefuse)
	}
	ss, err := statusredis.New(c, statusredis.Options{TTL: o.statusTTL})
	if err != nil {
		_ = c.Close()
		return nil, nil, err
	}
	d.DeliveryStatus.Store = ss
	log.Info("store: redis", zap.String("url", redisconn.Describe(o.store.url)),
		zap.Bool("password", o.store.passwordFile != ""), zap.String("unavailable_policy", o.store.unavailable))
	return c, errs, nil
}
