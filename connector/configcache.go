package connector

import (
	"bytes"
	"container/list"
	"sync"
)

// Default bounds of a ConfigCache.
const (
	// DefaultConfigCacheEntries is how many configurations a ConfigCache holds by default:
	// one per tenant of a platform that sends its tenants' configurations with each request.
	DefaultConfigCacheEntries = 1024
	// DefaultConfigCacheBytes bounds the total size of the configurations a ConfigCache holds
	// by default (their JSON bytes; what is prepared from them is of the same order), so that
	// large configurations cannot make the cache grow without bound.
	DefaultConfigCacheBytes = 16 << 20
)

// ConfigCache remembers what a connector prepared from a configuration (the parsed and
// validated form, compiled templates, ready credentials), so that a configuration that comes
// with every request is parsed and validated once, not at every send. It is bounded: it holds
// at most a number of entries and a number of configuration bytes, and evicts the least
// recently used entry beyond either. Only configurations without violations are kept.
//
// Entries are keyed by the configuration's bytes, so byte-identical configurations share an
// entry. The cache holds what the connector prepared from them anyway (credentials
// included), and never logs or exposes its keys. It is safe for concurrent use.
type ConfigCache[T any] struct {
	maxEntries, maxBytes int

	mu      sync.Mutex
	entries map[string]*list.Element // of *cacheEntry[T]
	order   list.List                // front: most recently used
	bytes   int                      // sum of the keys' lengths
}

// cacheEntry is one prepared configuration.
type cacheEntry[T any] struct {
	key string
	val T
}

// NewConfigCache returns a cache of at most maxEntries configurations of at most maxBytes
// bytes in all; 0 means DefaultConfigCacheEntries or DefaultConfigCacheBytes. A negative
// maxEntries disables the cache: Load then prepares every configuration.
func NewConfigCache[T any](maxEntries, maxBytes int) *ConfigCache[T] {
	if maxEntries == 0 {
		maxEntries = DefaultConfigCacheEntries
	}
	if maxBytes <= 0 {
		maxBytes = DefaultConfigCacheBytes
	}
	return &ConfigCache[T]{maxEntries: maxEntries, maxBytes: maxBytes, entries: map[string]*list.Element{}}
}

// Load returns what prepare made of raw, from the cache when raw was prepared before.
// Otherwise it calls prepare, and keeps the result when there are no violations and raw fits
// the cache's bounds. prepare must be a pure function of raw: concurrent first loads of the
// same configuration may each call it.
func (c *ConfigCache[T]) Load(raw []byte, prepare func(raw []byte) (T, []Violation)) (T, []Violation) {
	if c == nil || c.maxEntries < 0 {
		return prepare(raw)
	}
	if v, ok := c.lookup(raw); ok {
		return v, nil
	}
	v, vs := prepare(raw)
	if len(vs) == 0 {
		c.store(string(raw), v)
	}
	return v, vs
}

// lookup returns the value kept for raw, marking it most recently used.
func (c *ConfigCache[T]) lookup(raw []byte) (T, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.entries[string(raw)]
	if !ok {
		var zero T
		return zero, false
	}
	c.order.MoveToFront(e)
	return e.Value.(*cacheEntry[T]).val, true
}

// store keeps v under key and evicts the least recently used entries beyond the bounds. A key
// larger than the whole byte bound is not kept; a key already present keeps its first value.
func (c *ConfigCache[T]) store(key string, v T) {
	if len(key) > c.maxBytes {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.entries[key]; ok { // prepared concurrently; keep the first
		return
	}
	c.entries[key] = c.order.PushFront(&cacheEntry[T]{key: key, val: v})
	c.bytes += len(key)
	for len(c.entries) > c.maxEntries || c.bytes > c.maxBytes {
		oldest := c.order.Back()
		e := oldest.Value.(*cacheEntry[T])
		c.order.Remove(oldest)
		delete(c.entries, e.key)
		c.bytes -= len(e.key)
	}
}

// Len returns how many configurations the cache holds.
func (c *ConfigCache[T]) Len() int {
	if c == nil {
		return 0
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.entries)
}

// LoadForSend is Load for a Send: it returns what prepare made of config, or the error a Send
// fails with. An empty or null config fails with CONFIG_MISSING (the server fills in its default
// configuration before calling Send, so none reached the connector), and one with violations
// with INVALID_CONFIG (InvalidConfigError). name names the configuration in the messages
// ("Twilio", "console"). config is trimmed of white space first, as ValidateConfig should do
// too, so that both share a cache entry.
func (c *ConfigCache[T]) LoadForSend(config []byte, name string, prepare func(raw []byte) (T, []Violation)) (T, error) {
	raw := bytes.TrimSpace(config)
	if len(raw) == 0 || string(raw) == "null" {
		var zero T
		return zero, Errorf(ReasonConfigMissing,
			"the request carries no %s configuration and no default configuration was filled in", name)
	}
	v, vs := c.Load(raw, prepare)
	if len(vs) > 0 {
		var zero T
		return zero, InvalidConfigError(name, vs)
	}
	return v, nil
}

// InvalidConfigError returns the INVALID_CONFIG error for vs, which must not be empty (see
// ViolationsError). name names the configuration ("Twilio").
func InvalidConfigError(name string, vs []Violation) *Error {
	return ViolationsError(ReasonInvalidConfig, "the "+name+" configuration", vs)
}
