// Package redisconn opens the Redis client of a shared store from the binary's flags: --store
// (a Redis URL as go-redis parses it), --store-password-file and --store-ca-file. The URL
// forms are:
//
//	redis://[user@]host:port[/db]                       one Redis server (db defaults to 0)
//	rediss://[user@]host:port[/db]                      the same over TLS
//	redis://host1:6379?addr=host2:6379&addr=host3:6379  Redis Cluster: any addr parameter
//	                                                    makes the URL a cluster's seed list
//
// with go-redis's other query parameters (dial_timeout, pool_size, ...). A password in the URL
// is refused: it would show in process lists and logs; it comes from the password file. A
// self-signed CA of a rediss:// server comes from the CA file. Open returns a
// redis.UniversalClient, so the stores built on it work the same on one server and on a
// cluster.
package redisconn

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// Memory is the --store value of the in-process store, the default.
const Memory = "memory"

// Defaults of Options.
const (
	// DefaultPingTimeout bounds Open's PING: a store that does not answer within it stops the
	// binary at start-up.
	DefaultPingTimeout = 5 * time.Second
	// DefaultCommandTimeout bounds each command's network reads and writes, and
	// DefaultDialTimeout each connection, unless the URL's read_timeout, write_timeout or
	// dial_timeout say otherwise. Callers bound every call by their context as well.
	DefaultCommandTimeout = time.Second
	DefaultDialTimeout    = 2 * time.Second
)

// Options say which Redis to open.
type Options struct {
	// URL is the --store value: a redis:// or rediss:// URL as the package doc describes.
	URL string
	// PasswordFile holds the password (trimmed of surrounding white space); empty: none.
	PasswordFile string
	// CAFile holds the PEM CA certificate(s) a rediss:// server's certificate must chain to;
	// empty: the system's roots.
	CAFile string
	// PingTimeout bounds Open's PING (default DefaultPingTimeout).
	PingTimeout time.Duration
}

// parsed is a checked URL: exactly one of single and cluster is set.
type parsed struct {
	single  *redis.Options
	cluster *redis.ClusterOptions
	tls     bool
}

// Check reports what is wrong with o without reading a file or connecting, for flag
// validation.
func Check(o Options) error {
	_, err := parse(o)
	return err
}

func parse(o Options) (*parsed, error) {
	u, err := url.Parse(o.URL)
	if err != nil {
		return nil, fmt.Errorf("--store: not a URL: %w", errors.Unwrap(err))
	}
	if u.Scheme != "redis" && u.Scheme != "rediss" {
		return nil, fmt.Errorf("--store %q: want %q or a redis:// or rediss:// URL", Describe(o.URL), Memory)
	}
	if _, has := u.User.Password(); has {
		return nil, errors.New("--store: the URL holds a password: put it in a file named by --store-password-file instead (a URL shows in process lists and logs)")
	}
	if u.Host == "" {
		return nil, fmt.Errorf("--store %q: no host", Describe(o.URL))
	}
	p := &parsed{tls: u.Scheme == "rediss"}
	if o.CAFile != "" && !p.tls {
		return nil, errors.New("--store-ca-file needs a rediss:// (TLS) --store URL")
	}
	if u.Query().Has("addr") {
		if strings.Trim(u.Path, "/") != "" {
			return nil, fmt.Errorf("--store %q: a Redis Cluster (addr parameters) has database 0 only: drop the path", Describe(o.URL))
		}
		if p.cluster, err = redis.ParseClusterURL(o.URL); err != nil {
			return nil, fmt.Errorf("--store %q: %w", Describe(o.URL), err)
		}
		return p, nil
	}
	if p.single, err = redis.ParseURL(o.URL); err != nil {
		return nil, fmt.Errorf("--store %q: %w", Describe(o.URL), err)
	}
	return p, nil
}

// Open builds the client o names and checks that the store answers a PING within
// o.PingTimeout; it fails, naming the store without credentials, otherwise. The caller
// closes the client.
func Open(ctx context.Context, o Options) (redis.UniversalClient, error) {
	p, err := parse(o)
	if err != nil {
		return nil, err
	}
	password := ""
	if o.PasswordFile != "" {
		raw, err := os.ReadFile(o.PasswordFile)
		if err != nil {
			return nil, fmt.Errorf("--store-password-file: %w", err)
		}
		if password = strings.TrimSpace(string(raw)); password == "" {
			return nil, fmt.Errorf("--store-password-file %s is empty", o.PasswordFile)
		}
	}
	var roots *x509.CertPool
	if o.CAFile != "" {
		pem, err := os.ReadFile(o.CAFile)
		if err != nil {
			return nil, fmt.Errorf("--store-ca-file: %w", err)
		}
		roots = x509.NewCertPool()
		if !roots.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("--store-ca-file %s: no PEM certificate in it", o.CAFile)
		}
	}
	var c redis.UniversalClient
	if p.cluster != nil {
		co := p.cluster
		co.Password = password
		co.ContextTimeoutEnabled = true
		co.DialTimeout, co.ReadTimeout, co.WriteTimeout = timeouts(co.DialTimeout, co.ReadTimeout, co.WriteTimeout)
		co.TLSConfig = tlsConfig(co.TLSConfig, roots)
		c = redis.NewClusterClient(co)
	} else {
		so := p.single
		so.Password = password
		so.ContextTimeoutEnabled = true
		so.DialTimeout, so.ReadTimeout, so.WriteTimeout = timeouts(so.DialTimeout, so.ReadTimeout, so.WriteTimeout)
		so.TLSConfig = tlsConfig(so.TLSConfig, roots)
		c = redis.NewClient(so)
	}
	timeout := o.PingTimeout
	if timeout <= 0 {
		timeout = DefaultPingTimeout
	}
	pctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	if err := c.Ping(pctx).Err(); err != nil {
		_ = c.Close()
		return nil, fmt.Errorf("--store %s: no answer to PING within %v: %w", Describe(o.URL), timeout, err)
	}
	return c, nil
}

// timeouts fills the timeouts the URL left unset.
func timeouts(dial, read, write time.Duration) (time.Duration, time.Duration, time.Duration) {
	if dial == 0 {
		dial = DefaultDialTimeout
	}
	if read == 0 {
		read = DefaultCommandTimeout
	}
	if write == 0 {
		write = DefaultCommandTimeout
	}
	return dial, read, write
}

// tlsConfig adds the CA roots to go-redis's TLS configuration of a rediss:// URL (nil for
// redis://).
func tlsConfig(c *tls.Config, roots *x509.CertPool) *tls.Config {
	if c == nil {
		return nil
	}
	c = c.Clone()
	c.RootCAs = roots
	if c.MinVersion < tls.VersionTLS12 {
		c.MinVersion = tls.VersionTLS12
	}
	return c
}

// Describe returns the --store value for logs and messages, without any password.
func Describe(store string) string {
	u, err := url.Parse(store)
	if err != nil {
		return "(not a URL)"
	}
	if u.User != nil {
		u.User = url.User(u.User.Username())
	}
	return u.String()
}
