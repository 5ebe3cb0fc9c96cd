package redisconn

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"go.uber.org/goleak"

	"github.com/sms-connector/sms-connector/internal/testpki"
	"github.com/sms-connector/sms-connector/internal/testutil/redistest"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

func TestCheck(t *testing.T) {
	tests := []struct {
		name    string
		o       Options
		cluster bool
		err     string // "" when valid
	}{
		{"one server", Options{URL: "redis://127.0.0.1:6379/2"}, false, ""},
		{"user without password", Options{URL: "redis://app@redis.internal:6379"}, false, ""},
		{"tls with CA", Options{URL: "rediss://redis.internal:6380", CAFile: "ca.pem"}, false, ""},
		{"go-redis parameters", Options{URL: "redis://h:6379?dial_timeout=3s&pool_size=20"}, false, ""},
		{"cluster", Options{URL: "redis://h1:6379?addr=h2:6379&addr=h3:6379"}, true, ""},
		{"cluster over tls", Options{URL: "rediss://h1:6379?addr=h2:6379", CAFile: "ca.pem"}, true, ""},
		{"password in URL", Options{URL: "redis://:hunter2@h:6379"}, false, "--store-password-file"},
		{"user and password in URL", Options{URL: "redis://app:hunter2@h:6379"}, false, "--store-password-file"},
		{"other scheme", Options{URL: "http://h:6379"}, false, `want "memory" or a redis://`},
		{"no scheme", Options{URL: "h:6379"}, false, `want "memory" or a redis://`},
		{"no host", Options{URL: "redis://"}, false, "no host"},
		{"CA without TLS", Options{URL: "redis://h:6379", CAFile: "ca.pem"}, false, "--store-ca-file needs a rediss://"},
		{"bad database", Options{URL: "redis://h:6379/x"}, false, "invalid database number"},
		{"unknown parameter", Options{URL: "redis://h:6379?colour=blue"}, false, "unexpected option: colour"},
		{"cluster with a database", Options{URL: "redis://h1:6379/1?addr=h2:6379"}, false, "database 0 only"},
		{"cluster with a bad addr", Options{URL: "redis://h1:6379?addr=h2"}, false, "unable to parse addr"},
		{"not a URL", Options{URL: "redis://h:6379/%zz"}, false, "not a URL"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := parse(tt.o)
			if tt.err == "" {
				if err != nil {
					t.Fatalf("Check: %v", err)
				}
				if (p.cluster != nil) != tt.cluster || (p.single != nil) == tt.cluster {
					t.Errorf("cluster %v, single %v; want cluster: %v", p.cluster != nil, p.single != nil, tt.cluster)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Fatalf("Check: %v, want an error containing %q", err, tt.err)
			}
			if strings.Contains(err.Error(), "hunter2") {
				t.Errorf("the error shows the password: %v", err)
			}
		})
	}
}

func TestDescribe(t *testing.T) {
	for in, want := range map[string]string{
		"redis://h:6379/1":             "redis://h:6379/1",
		"rediss://app:hunter2@h:6380":  "rediss://app@h:6380",
		"redis://h1:6379?addr=h2:6379": "redis://h1:6379?addr=h2:6379",
		"redis://:hunter2@h:6379?x=1":  "redis://@h:6379?x=1",
		"redis://h:port:6379/%zz":      "(not a URL)",
	} {
		if got := Describe(in); got != want {
			t.Errorf("Describe(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestOpen(t *testing.T) {
	plain := redistest.Start(t)
	secured := redistest.Start(t, redistest.WithTLS(), redistest.WithPassword("open-sesame-42"))
	otherCA := testpki.WriteFile(t, t.TempDir(), "other.pem", testpki.NewCA(t, "other").CertPEM)
	wrongPassword := testpki.WriteFile(t, t.TempDir(), "wrong", []byte("not-it"))
	empty := testpki.WriteFile(t, t.TempDir(), "empty", []byte("\n"))
	notPEM := testpki.WriteFile(t, t.TempDir(), "not.pem", []byte("hello"))
	tests := []struct {
		name string
		o    Options
		err  string
	}{
		{"plain", Options{URL: plain.URL()}, ""},
		{"tls, CA and password file", Options{URL: secured.URL(), CAFile: secured.CAFile, PasswordFile: secured.PasswordFile}, ""},
		{"tls without the password", Options{URL: secured.URL(), CAFile: secured.CAFile}, "NOAUTH"},
		{"wrong password", Options{URL: secured.URL(), CAFile: secured.CAFile, PasswordFile: wrongPassword}, "WRONGPASS"},
		{"CA that did not sign", Options{URL: secured.URL(), CAFile: otherCA, PasswordFile: secured.PasswordFile}, "certificate"},
		{"no CA: system roots", Options{URL: secured.URL(), PasswordFile: secured.PasswordFile}, "certificate"},
		{"empty password file", Options{URL: plain.URL(), PasswordFile: empty}, "is empty"},
		{"missing password file", Options{URL: plain.URL(), PasswordFile: "/nonexistent/pw"}, "--store-password-file"},
		{"CA file without PEM", Options{URL: secured.URL(), CAFile: notPEM}, "no PEM certificate"},
		{"nobody listening", Options{URL: "redis://127.0.0.1:1", PingTimeout: time.Second}, "no answer to PING within 1s"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Open(context.Background(), tt.o)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("Open: %v, want an error containing %q", err, tt.err)
				}
				if strings.Contains(err.Error(), "open-sesame") {
					t.Errorf("the error shows the password: %v", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			if _, ok := c.(*redis.Client); !ok {
				t.Errorf("client %T, want *redis.Client for one server", c)
			}
			if err := c.Set(context.Background(), "k", "v", time.Minute).Err(); err != nil {
				t.Errorf("SET: %v", err)
			}
		})
	}
}

// TestOpenHonoursContext: a cancelled start-up does not wait for the PING timeout.
func TestOpenHonoursContext(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := Open(ctx, Options{URL: redistest.Start(t).URL()}); err == nil {
		t.Fatal("Open with a cancelled context succeeded")
	}
}
