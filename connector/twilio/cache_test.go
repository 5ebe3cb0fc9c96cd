package twilio

import (
	"bytes"
	"context"
	"testing"

	"github.com/sms-connector/sms-connector/connector"
)

// TestConfigPreparedOnce: a configuration is parsed once, whether it comes with each request
// or was checked first with ValidateConfig (as the server does with its default), and an
// invalid one is never kept.
func TestConfigPreparedOnce(t *testing.T) {
	srv, c := emulator(t)
	ctx := context.Background()
	cfg := emuConfig(t)

	// The server checks its default configuration at start-up, with surrounding white space
	// as read from a file; the Sends that follow reuse what that check prepared.
	if vs, err := c.ValidateConfig(ctx, append(append([]byte("\n "), cfg...), '\n')); err != nil || len(vs) > 0 {
		t.Fatalf("ValidateConfig: %v, %v", vs, err)
	}
	if n := c.configs.Len(); n != 1 {
		t.Fatalf("%d prepared configurations after ValidateConfig, want 1", n)
	}
	for range 3 {
		// A fresh copy each time, as a configuration arriving with a request is.
		if _, err := c.Send(ctx, message(bytes.Clone(cfg))); err != nil {
			t.Fatal(err)
		}
	}
	if n := c.configs.Len(); n != 1 {
		t.Fatalf("%d prepared configurations after 3 sends of the same one, want 1", n)
	}
	if got := len(srv.Messages()); got != 3 {
		t.Fatalf("the emulator got %d messages, want 3", got)
	}

	// A different configuration is a second entry; it renders with its own templates.
	other := emuConfig(t, func(m map[string]any) { m["templates"] = []any{tpl("Generic", "Other {{code}}")} })
	if _, err := c.Send(ctx, message(other)); err != nil {
		t.Fatal(err)
	}
	if n := c.configs.Len(); n != 2 {
		t.Fatalf("%d prepared configurations, want 2", n)
	}
	msgs := srv.Messages()
	if body := msgs[len(msgs)-1].Body; body != "Other 123456" {
		t.Fatalf("body %q, want the second configuration's template", body)
	}

	// An invalid configuration fails every time and is never kept.
	bad := emuConfig(t, func(m map[string]any) { m["accountSID"] = "nope" })
	for range 2 {
		if _, err := c.Send(ctx, message(bad)); connector.ReasonOf(err) != connector.ReasonInvalidConfig {
			t.Fatalf("err = %v, want INVALID_CONFIG", err)
		}
	}
	if n := c.configs.Len(); n != 2 {
		t.Fatalf("%d prepared configurations after an invalid one, want 2", n)
	}
}

func TestConfigCacheCanBeDisabled(t *testing.T) {
	_, c := emulatorWith(t, Options{ConfigCacheSize: -1})
	if _, err := c.Send(context.Background(), message(emuConfig(t))); err != nil {
		t.Fatal(err)
	}
	if n := c.configs.Len(); n != 0 {
		t.Fatalf("a disabled cache holds %d configurations", n)
	}
}

func TestConfigCacheIsBounded(t *testing.T) {
	_, c := emulatorWith(t, Options{ConfigCacheSize: 2})
	for _, body := range []string{"A {{code}}", "B {{code}}", "C {{code}}"} {
		cfg := emuConfig(t, func(m map[string]any) { m["templates"] = []any{tpl("Generic", body)} })
		if _, err := c.Send(context.Background(), message(cfg)); err != nil {
			t.Fatal(err)
		}
	}
	if n := c.configs.Len(); n != 2 {
		t.Fatalf("the cache holds %d configurations, want its bound of 2", n)
	}
}
