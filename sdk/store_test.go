package sdk_test

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/sms-connector/sms-connector/connector"
	"github.com/sms-connector/sms-connector/internal/testpki"
	"github.com/sms-connector/sms-connector/internal/testutil"
	"github.com/sms-connector/sms-connector/internal/testutil/redistest"
	"github.com/sms-connector/sms-connector/sdk"
	"github.com/sms-connector/sms-connector/smsplugin"
)

// TestStoreFlagsRefused: store flags are checked before anything binds, the URL and file
// mistakes as usage errors.
func TestStoreFlagsRefused(t *testing.T) {
	dir := t.TempDir()
	secret := testpki.WriteFile(t, dir, "secret", []byte("0123456789abcdef0123456789abcdef"))
	short := testpki.WriteFile(t, dir, "short", []byte("abc"))
	tests := []struct {
		name string
		args []string
		env  env
		code int
		want string
	}{
		{"bad policy", []string{"--store-unavailable", "maybe"}, nil, 2, `--store-unavailable "maybe": want refuse or allow`},
		{"password file with memory", []string{"--store-password-file", secret}, nil, 2, "configure a Redis --store"},
		{"password in URL", []string{"--store", "redis://:hunter2@127.0.0.1:1", "--guard-key-secret-file", secret}, nil, 2, "--store-password-file instead"},
		{"password in URL by variable", nil, env{"SMS_CONNECTOR_STORE": "redis://:hunter2@127.0.0.1:1"}, 2, "--store-password-file instead"},
		{"not redis", []string{"--store", "postgres://db"}, nil, 2, `want "memory" or a redis://`},
		{"CA without TLS", []string{"--store", "redis://127.0.0.1:1", "--store-ca-file", secret, "--guard-key-secret-file", secret}, nil, 2, "needs a rediss://"},
		{"redis without a guard secret", []string{"--store", "redis://127.0.0.1:1"}, nil, 2, "give --guard-key-secret-file"},
		{"short guard secret", []string{"--store", "redis://127.0.0.1:1", "--guard-key-secret-file", short}, nil, 1, "want at least 16"},
		{"unreachable", []string{"--store", "redis://127.0.0.1:1", "--guard-key-secret-file", secret}, nil, 1, "no answer to PING"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			code := sdk.Run(ctxFor(t), binary(&fake{}), append([]string{"--listen", "127.0.0.1:0"}, tt.args...), tt.env.get, &stdout, &stderr)
			if code != tt.code || !strings.Contains(stderr.String(), tt.want) {
				t.Errorf("exit code %d, stderr:\n%s\nwant code %d and %q", code, stderr.String(), tt.code, tt.want)
			}
			if strings.Contains(stderr.String(), "hunter2") || strings.Contains(stderr.String(), sdk.ServingMessage) {
				t.Errorf("stderr shows the password or serving:\n%s", stderr.String())
			}
		})
	}
}

// TestRedisStore: with --store rediss://, a password file and a CA file, the guard's windows
// live in Redis, the log names the store without the password, even at debug level.
func TestRedisStore(t *testing.T) {
	const password = "correct-horse-battery-staple"
	srv := redistest.Start(t, redistest.WithTLS(), redistest.WithPassword(password))
	secret := testpki.WriteFile(t, t.TempDir(), "guard-secret", []byte("0123456789abcdef0123456789abcdef\n"))
	r, cancel := start(t, binary(&fake{}), []string{"--listen", "127.0.0.1:0", "--log-level", "debug",
		"--store", srv.URL(), "--store-ca-file", srv.CAFile, "--guard-key-secret-file", secret},
		env{"SMS_CONNECTOR_STORE_PASSWORD_FILE": srv.PasswordFile})
	entry := r.waitFor(t, "msg", "store: redis")
	if entry["url"] != srv.URL() || entry["unavailable_policy"] != "refuse" || entry["password"] != true {
		t.Errorf("store line %v", entry)
	}
	serving := r.waitFor(t, "msg", sdk.ServingMessage)
	c := smsplugin.NewClient(testutil.Dial(t, serving["address"].(string)))
	m := &connector.Message{To: "+15005550006", UsageType: connector.UsageSignIn, Payload: connector.Payload{Code: "1"}}
	if _, err := c.Send(ctxFor(t), m); err != nil {
		t.Fatalf("Send: %v", err)
	}
	if _, err := c.Send(ctxFor(t), m); connector.ReasonOf(err) != connector.ReasonRateLimited {
		t.Fatalf("second Send to the recipient: %v, want RATE_LIMITED", err)
	}
	keys, err := srv.Client().Keys(context.Background(), "{sms-connector:guard}:*").Result()
	if err != nil || len(keys) == 0 {
		t.Errorf("guard keys in Redis: %q, %v", keys, err)
	}
	cancel()
	if code := <-r.code; code != 0 {
		t.Errorf("exit code %d\n%s", code, r.logs())
	}
	r.code <- 0
	if strings.Contains(r.logs(), password) {
		t.Errorf("the Redis password is in the logs:\n%s", r.logs())
	}
}
