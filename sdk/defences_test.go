package sdk_test

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sms-connector/sms-connector/connector"
	"github.com/sms-connector/sms-connector/connector/guard"
	"github.com/sms-connector/sms-connector/connector/idempotency"
	"github.com/sms-connector/sms-connector/sdk"
)

// blocking is a connector whose sends wait until release is closed.
type blocking struct {
	fake
	started chan struct{}
	release chan struct{}
}

func (b *blocking) Send(ctx context.Context, msg *connector.Message) (*connector.Receipt, error) {
	b.started <- struct{}{}
	<-b.release
	return b.fake.Send(ctx, msg)
}

func TestDefendLayers(t *testing.T) {
	f := &fake{}
	if c, err := sdk.Defend(f, sdk.Defences{}); err != nil || c != connector.SmsConnector(f) {
		t.Errorf("no defences: %T, %v; want the connector itself", c, err)
	}
	c, err := sdk.Defend(f, sdk.Defences{Guard: true, GuardOptions: guard.Options{Policy: guard.DefaultPolicy()}, IdempotencyWindow: time.Minute, MaxConcurrentSends: 1})
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := c.(*idempotency.Connector); !ok {
		t.Errorf("outermost layer %T, want idempotency", c)
	}
	if _, err := sdk.Defend(nil, sdk.Defences{}); err == nil {
		t.Error("Defend(nil) accepted")
	}
	if _, err := sdk.Defend(f, sdk.Defences{Guard: true, GuardOptions: guard.Options{Policy: guard.Policy{Global: guard.Limit{Max: -1}}}}); err == nil {
		t.Error("an invalid policy accepted")
	}
	if _, err := sdk.Defend(f, sdk.Defences{IdempotencyWindow: -time.Second}); err == nil {
		t.Error("a negative window accepted")
	}
}

// TestDefendOrder: duplicates of an idempotent send wait outside the concurrency limit, and a
// send the limit refuses takes no slot of the guard's windows.
func TestDefendOrder(t *testing.T) {
	b := &blocking{started: make(chan struct{}, 10), release: make(chan struct{})}
	p := guard.DefaultPolicy() // 1 per 30 s per recipient
	c, err := sdk.Defend(b, sdk.Defences{Guard: true, GuardOptions: guard.Options{Policy: p}, IdempotencyWindow: time.Minute, MaxConcurrentSends: 1})
	if err != nil {
		t.Fatal(err)
	}
	msg := func(to, key string) *connector.Message {
		return &connector.Message{To: to, UsageType: connector.UsageSignIn, Payload: connector.Payload{Code: "1"}, IdempotencyKey: key}
	}
	ctx := context.Background()
	var wg sync.WaitGroup
	errs := make(chan error, 3)
	for range 3 { // one leader, two duplicates waiting for it: one slot is enough
		wg.Go(func() {
			_, err := c.Send(ctx, msg("+14155550100", "k"))
			errs <- err
		})
	}
	<-b.started
	// The only slot is taken: another recipient is refused for load, before the guard.
	_, err = c.Send(ctx, msg("+14155550101", ""))
	if connector.ReasonOf(err) != connector.ReasonOverloaded {
		t.Fatalf("a send beyond the concurrency limit: %v, want OVERLOADED", err)
	}
	close(b.release)
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Errorf("an idempotent duplicate failed: %v", err)
		}
	}
	if sent, _ := b.state(); len(sent) != 1 {
		t.Errorf("the vendor sent %d messages, want 1", len(sent))
	}
	// The refused send took no guard slot: its recipient can be sent to now.
	if _, err := c.Send(ctx, msg("+14155550101", "")); err != nil {
		t.Errorf("the recipient refused for load: %v (it must not have started a cooldown)", err)
	}
}

func TestSandboxPolicy(t *testing.T) {
	p := sdk.SandboxPolicy()
	if err := p.Validate(); err != nil {
		t.Fatal(err)
	}
	d := guard.DefaultPolicy()
	if strings.Join(p.DenyCountries, ",") != strings.Join(d.DenyCountries, ",") || len(p.DenyNumberTypes) != len(d.DenyNumberTypes) {
		t.Errorf("the sandbox policy must keep the default destination rules: %+v", p)
	}
	if p.Recipient[0].Max < 10 {
		t.Errorf("the sandbox policy must let examples run again: %+v", p.Recipient)
	}
}

// TestServiceModeDefences: the binary's default defences apply in service mode, the guard's
// policy is logged, and --no-guard is logged as a warning.
func TestServiceModeDefences(t *testing.T) {
	f := &fake{}
	r, cancel := start(t, binary(f), []string{"--listen", "127.0.0.1:0", "--max-segments", "0"}, env{})
	r.waitFor(t, "msg", sdk.ServingMessage)
	cancel()
	<-r.code
	r.code <- 0
	logs := r.logs()
	for _, want := range []string{`"msg":"abuse guard on"`, `"denyCountries":["+870"`, `"max_concurrent_sends":256`, `"max_segments":0`, `"idempotency_window":"10m0s"`} {
		if !strings.Contains(logs, want) {
			t.Errorf("the start-up log lacks %s:\n%s", want, logs)
		}
	}

	r, cancel = start(t, binary(f), []string{"--listen", "127.0.0.1:0", "--no-guard"}, env{})
	r.waitFor(t, "msg", sdk.ServingMessage)
	cancel()
	<-r.code
	r.code <- 0
	if !strings.Contains(r.logs(), `"level":"warn"`) || !strings.Contains(r.logs(), "abuse guard off (--no-guard)") {
		t.Errorf("--no-guard is not warned about:\n%s", r.logs())
	}
}
