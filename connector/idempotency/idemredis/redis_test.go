package idemredis_test

import (
	"context"
	"net"
	"os/exec"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"go.uber.org/goleak"
)

// TestMain fails the package's tests if any goroutine outlives them.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// redisServer is a redis-server of the test's own on a loopback port, without persistence.
type redisServer struct {
	t    *testing.T
	addr string
	cmd  *exec.Cmd
}

// startRedis starts a redis-server for t, stopped at its cleanup. It fails, never skips, when
// redis-server is missing.
func startRedis(t *testing.T) *redisServer {
	t.Helper()
	if _, err := exec.LookPath("redis-server"); err != nil {
		t.Fatal("redis-server not found: apt-get install redis-server")
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	_ = l.Close()
	s := &redisServer{t: t, addr: addr}
	s.Start()
	t.Cleanup(s.Stop)
	return s
}

// Start starts the server (again) on its port and waits until it answers PING.
func (s *redisServer) Start() {
	s.t.Helper()
	_, port, _ := net.SplitHostPort(s.addr)
	s.cmd = exec.Command("redis-server", "--port", port, "--bind", "127.0.0.1", "--save", "", "--appendonly", "no")
	if err := s.cmd.Start(); err != nil {
		s.t.Fatalf("redis-server: %v", err)
	}
	c := redis.NewClient(&redis.Options{Addr: s.addr, MaxRetries: -1})
	defer func() { _ = c.Close() }()
	for range 500 {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		err := c.Ping(ctx).Err()
		cancel()
		if err == nil {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	s.t.Fatalf("redis-server on %s does not answer PING", s.addr)
}

// Stop kills the server and waits for it to exit.
func (s *redisServer) Stop() {
	if s.cmd == nil {
		return
	}
	_ = s.cmd.Process.Kill()
	_ = s.cmd.Wait()
	s.cmd = nil
}

// Client is a new client of the server, closed at the test's cleanup.
func (s *redisServer) Client() redis.UniversalClient {
	c := redis.NewUniversalClient(&redis.UniversalOptions{Addrs: []string{s.addr}})
	s.t.Cleanup(func() { _ = c.Close() })
	return c
}

// Keys lists every key in the server (SCAN).
func (s *redisServer) Keys(ctx context.Context, c redis.UniversalClient) []string {
	s.t.Helper()
	var keys []string
	iter := c.Scan(ctx, 0, "*", 100).Iterator()
	for iter.Next(ctx) {
		keys = append(keys, iter.Val())
	}
	if err := iter.Err(); err != nil {
		s.t.Fatal(err)
	}
	return keys
}
