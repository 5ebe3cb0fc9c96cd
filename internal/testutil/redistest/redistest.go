// Package redistest runs real redis-server processes for tests, shaped like httptest:
// Start(t) returns a Server on a free loopback port with no persistence, stopped and removed
// when the test ends. Options add a password (requirepass, with a password file for
// --store-password-file) and TLS with a throwaway CA (internal/testpki). It needs Debian's
// redis-server (Redis 7) on PATH; without it the test fails, naming the package to install:
// Redis tests are never skipped.
package redistest

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"os/exec"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/sms-connector/sms-connector/internal/testpki"
	"github.com/sms-connector/sms-connector/internal/testutil"
)

// Install is what to run when redis-server is missing.
const Install = "apt-get install redis-server"

// readyTimeout bounds how long a redis-server may take to answer PING after it starts.
const readyTimeout = 10 * time.Second

// Server is one redis-server process on 127.0.0.1.
type Server struct {
	// Addr is host:port of the server.
	Addr string
	// Password is the server's requirepass ("" without WithPassword).
	Password string
	// PasswordFile holds Password, for --store-password-file ("" without WithPassword).
	PasswordFile string
	// CA signed the server's certificate and CAFile holds it in PEM, for --store-ca-file
	// (nil and "" without WithTLS).
	CA     *testpki.CA
	CAFile string

	t    testing.TB
	dir  string
	args []string

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{}
	log  *testutil.Buffer
}

// Option configures Start.
type Option func(*Server)

// WithPassword makes the server require password (requirepass) and writes it to PasswordFile.
func WithPassword(password string) Option {
	return func(s *Server) { s.Password = password }
}

// WithTLS makes the server speak TLS only, with a certificate for localhost and 127.0.0.1
// from a new CA (Server.CA, Server.CAFile); clients need no certificate of their own.
func WithTLS() Option {
	return func(s *Server) { s.CA = testpki.NewCA(s.t, "redistest CA") }
}

// WithArgs passes more redis-server arguments ("--maxmemory", "1mb").
func WithArgs(args ...string) Option {
	return func(s *Server) { s.args = append(s.args, args...) }
}

// Start starts a redis-server and waits until it answers; it is stopped when t ends.
func Start(t testing.TB, opts ...Option) *Server {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		t.Fatalf("redis-server is not installed; the Redis tests need it (Debian: %s)", Install)
	}
	s := &Server{t: t, dir: t.TempDir()}
	for _, o := range opts {
		o(s)
	}
	port := freePort(t)
	s.Addr = net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	args := []string{"--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", s.dir,
		"--daemonize", "no", "--logfile", "", "--loglevel", "warning"}
	if s.CA != nil {
		pair := s.CA.Server(t)
		s.CAFile = testpki.WriteFile(t, s.dir, "ca.pem", s.CA.CertPEM)
		args = append(args, "--port", "0", "--tls-port", strconv.Itoa(port),
			"--tls-cert-file", testpki.WriteFile(t, s.dir, "server.pem", pair.CertPEM),
			"--tls-key-file", testpki.WriteFile(t, s.dir, "server.key", pair.KeyPEM),
			"--tls-ca-cert-file", s.CAFile, "--tls-auth-clients", "no")
	} else {
		args = append(args, "--port", strconv.Itoa(port))
	}
	if s.Password != "" {
		s.PasswordFile = testpki.WriteFile(t, s.dir, "password", []byte(s.Password+"\n"))
		args = append(args, "--requirepass", s.Password)
	}
	s.args = append(args, s.args...)
	s.start(bin)
	t.Cleanup(s.Stop)
	return s
}

// URL is the server's address as --store takes it: redis://127.0.0.1:port, or rediss:// with
// TLS; never with the password.
func (s *Server) URL() string {
	if s.CA != nil {
		return "rediss://" + s.Addr
	}
	return "redis://" + s.Addr
}

// Client returns a go-redis client of the server (password and TLS set), closed when the test
// ends: for a test to look at keys.
func (s *Server) Client() *redis.Client {
	c := s.newClient()
	s.t.Cleanup(func() { _ = c.Close() })
	return c
}

// newClient returns a client of the server that the caller closes.
func (s *Server) newClient() *redis.Client {
	o := &redis.Options{Addr: s.Addr, Password: s.Password, MaxRetries: -1}
	if s.CA != nil {
		o.TLSConfig = &tls.Config{RootCAs: s.CA.Pool(), ServerName: "127.0.0.1", MinVersion: tls.VersionTLS12}
	}
	return redis.NewClient(o)
}

// Stop stops the server (its data is lost); Stop of a stopped server does nothing.
func (s *Server) Stop() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil {
		return
	}
	_ = s.cmd.Process.Kill()
	<-s.done
	s.cmd = nil
}

// Restart starts a stopped server again on the same address, empty, and waits until it
// answers.
func (s *Server) Restart() {
	s.t.Helper()
	s.Stop()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		s.t.Fatalf("redis-server: %v (Debian: %s)", err, Install)
	}
	s.start(bin)
}

// start runs bin with s.args and waits for PING, retrying a while when the port is briefly
// held by the previous process.
func (s *Server) start(bin string) {
	s.t.Helper()
	deadline := time.Now().Add(readyTimeout)
	for {
		err := s.startOnce(bin, deadline)
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("redis-server %v: %v\n%s", s.args, err, s.log.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (s *Server) startOnce(bin string, deadline time.Time) error {
	cmd := exec.Command(bin, s.args...)
	log := &testutil.Buffer{}
	cmd.Stdout, cmd.Stderr, cmd.Dir = log, log, s.dir
	if err := cmd.Start(); err != nil {
		return err
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	s.mu.Lock()
	s.cmd, s.done, s.log = cmd, done, log
	s.mu.Unlock()
	c := s.newClient()
	defer c.Close()
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		err := c.Ping(ctx).Err()
		cancel()
		if err == nil {
			return nil
		}
		select {
		case <-done:
			s.mu.Lock()
			s.cmd = nil
			s.mu.Unlock()
			return fmt.Errorf("exited before answering: %w", err)
		default:
		}
		if time.Now().After(deadline) {
			s.Stop()
			return errors.New("no answer to PING")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Log returns what the current redis-server process wrote.
func (s *Server) Log() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.log.String()
}

// freePort returns a loopback TCP port nobody listens on now.
func freePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}
