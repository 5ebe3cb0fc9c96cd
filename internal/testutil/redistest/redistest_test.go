package redistest

import (
	"context"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

func TestServer(t *testing.T) {
	tests := []struct {
		name   string
		opts   []Option
		scheme string
	}{
		{"plain", nil, "redis://"},
		{"password", []Option{WithPassword("s3cret-pass")}, "redis://"},
		{"tls and password", []Option{WithTLS(), WithPassword("s3cret-pass")}, "rediss://"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := Start(t, tt.opts...)
			if !strings.HasPrefix(s.URL(), tt.scheme+"127.0.0.1:") || strings.Contains(s.URL(), "s3cret") {
				t.Errorf("URL %q", s.URL())
			}
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			c := s.Client()
			if err := c.Set(ctx, "k", "v", 0).Err(); err != nil {
				t.Fatal(err)
			}
			for _, arg := range []string{"save", "appendonly"} {
				got, err := c.ConfigGet(ctx, arg).Result()
				if err != nil || (got[arg] != "" && got[arg] != "no") {
					t.Errorf("CONFIG GET %s = %v, %v; want no persistence", arg, got, err)
				}
			}
			s.Stop()
			if err := c.Ping(ctx).Err(); err == nil {
				t.Fatal("PING answered after Stop")
			}
			s.Restart()
			if n, err := c.Exists(ctx, "k").Result(); err != nil || n != 0 {
				t.Errorf("after Restart: EXISTS k = %d, %v; want an empty server", n, err)
			}
		})
	}
}

func TestPasswordRequired(t *testing.T) {
	s := Start(t, WithPassword("pw"))
	s.Password = ""
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := s.Client().Ping(ctx).Err(); err == nil || !strings.Contains(err.Error(), "NOAUTH") {
		t.Errorf("PING without the password: %v, want NOAUTH", err)
	}
}

func TestCluster(t *testing.T) {
	c := StartCluster(t, 3)
	if got := strings.Count(c.URL(), "addr="); got != 2 || !strings.HasPrefix(c.URL(), "redis://127.0.0.1:") {
		t.Errorf("URL %q: want the first node and two addr parameters", c.URL())
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	rc := c.Client()
	// Keys of different slots land on different masters, and every one is served.
	masters := map[string]bool{}
	for i := range 30 {
		k := "k" + strconv.Itoa(i)
		if err := rc.Set(ctx, k, "v", 0).Err(); err != nil {
			t.Fatalf("SET %s: %v", k, err)
		}
		n, err := rc.MasterForKey(ctx, k)
		if err != nil {
			t.Fatal(err)
		}
		masters[n.Options().Addr] = true
	}
	if len(masters) != 3 {
		t.Errorf("30 keys used %d masters, want 3", len(masters))
	}
}
