// Package testutil holds the helpers this module's tests share: a clock moved by hand, a
// buffer safe for concurrent writers and a gRPC client connection closed with the test. Its
// subpackage testbin builds and runs the module's binaries. It is for tests only.
package testutil

import (
	"bytes"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
)

// Clock is a clock a test moves by hand, so that nothing sleeps and no test depends on the
// wall clock. Its Now fits every clock option of the module (guard.Options.Now,
// idempotency.Options.Now, guard.MemoryOptions.Now). It is safe for concurrent use.
type Clock struct {
	mu sync.Mutex
	t  time.Time
}

// NewClock returns a Clock at a fixed instant, 2026-01-02 03:04:05 UTC.
func NewClock() *Clock {
	return &Clock{t: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}
}

// Now returns the clock's time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

// Advance moves the clock by d.
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// Buffer is a bytes.Buffer that a writer goroutine (a connector, a plugin's log copier) and
// the test can use at once.
type Buffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

// Write appends p.
func (b *Buffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

// String returns everything written so far.
func (b *Buffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// Dial returns a client connection to target (host:port, or unix:///path), closed when the
// test ends. It is plaintext unless opts give transport credentials of their own.
func Dial(t testing.TB, target string, opts ...grpc.DialOption) *grpc.ClientConn {
	t.Helper()
	opts = append([]grpc.DialOption{grpc.WithTransportCredentials(insecure.NewCredentials())}, opts...)
	cc, err := grpc.NewClient(target, opts...)
	if err != nil {
		t.Fatalf("dial %s: %v", target, err)
	}
	t.Cleanup(func() { _ = cc.Close() })
	return cc
}
