package connectortest

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/sms-connector/sms-connector/connector"
	"github.com/sms-connector/sms-connector/internal/contract"
)

// recipient is the E.164 number the suite sends to, unless a rule needs several. It is not one
// of Twilio's magic test numbers, so an emulator accepts it.
const recipient = "+14155550123"

// code is the verification code the suite sends, unless a rule needs another.
const code = "123456"

// tpl is a template, shorter to write in tables.
func tpl(usage connector.UsageType, content string) connector.Template {
	return connector.Template{UsageType: usage, Content: content}
}

// tplLocale is a template written for locale.
func tplLocale(usage connector.UsageType, locale, content string) connector.Template {
	return connector.Template{UsageType: usage, Content: content, Locale: locale}
}

// message is a message for usage with the suite's recipient and code and cfg.
func message(cfg []byte, usage connector.UsageType) *connector.Message {
	return &connector.Message{
		To:        recipient,
		UsageType: usage,
		Payload:   connector.Payload{Code: code},
		Config:    cfg,
	}
}

// sendResult is what one Send returned, or the value it panicked with.
type sendResult struct {
	r        *connector.Receipt
	err      error
	panicked any
}

// safeSend calls c.Send and turns a panic into a value, so that a panicking connector fails
// one rule with a message instead of the whole test binary. It may run on any goroutine.
func safeSend(ctx context.Context, c connector.SmsConnector, m *connector.Message) (res sendResult) {
	defer func() {
		if p := recover(); p != nil {
			res = sendResult{panicked: p}
		}
	}()
	r, err := c.Send(ctx, m)
	return sendResult{r: r, err: err}
}

// send calls Send on the test's goroutine; a panic fails the test.
func (e *env) send(t *testing.T, ctx context.Context, m *connector.Message) (*connector.Receipt, error) {
	t.Helper()
	res := safeSend(ctx, e.c, m)
	if res.panicked != nil {
		t.Fatalf("conformance: Send must not panic, it panicked with: %v", res.panicked)
	}
	return res.r, res.err
}

// validate calls ValidateConfig on cfg, which what describes, and returns the violations. A
// Go error or a panic fails the test: ValidateConfig reports every problem of a configuration
// as violations.
func (e *env) validate(t *testing.T, cfg []byte, what string) (vs []connector.Violation) {
	t.Helper()
	defer func() {
		if p := recover(); p != nil {
			t.Fatalf("conformance: ValidateConfig must not panic, it panicked on %s (%s) with: %v", what, show(cfg), p)
		}
	}()
	vs, err := e.c.ValidateConfig(t.Context(), cfg)
	if err != nil {
		t.Fatalf("conformance: ValidateConfig must answer %s (%s) with violations, not fail; got %v", what, show(cfg), err)
	}
	return vs
}

// report fails the test with each problem a contract rule found.
func report(t *testing.T, p contract.Problems) {
	t.Helper()
	for _, s := range p {
		t.Errorf("conformance: %s", s)
	}
}

// deliveredSince returns what the connector delivered after the first mark deliveries.
func (e *env) deliveredSince(t *testing.T, mark int) []Delivery {
	t.Helper()
	all := e.h.Delivered(t)
	if len(all) < mark {
		t.Fatalf("conformance: Harness.Delivered shrank from %d to %d messages; it must only grow", mark, len(all))
	}
	return all[mark:]
}

// sendOK sends m, which rule says must succeed and deliver exactly one message, and returns
// the receipt and the delivery. It fails the test otherwise.
func (e *env) sendOK(t *testing.T, rule string, m *connector.Message) (*connector.Receipt, Delivery) {
	t.Helper()
	mark := len(e.h.Delivered(t))
	r, err := e.send(t, t.Context(), m)
	if err != nil {
		hint := ""
		if ce := (*connector.Error)(nil); errors.As(err, &ce) && ce.Reason == connector.ReasonInvalidConfig {
			hint = " (the config came from Harness.Config, whose fields other than templates must be valid)"
		}
		t.Fatalf("conformance: %s must succeed, got %s%s", rule, contract.Describe(err), hint)
	}
	if r == nil {
		t.Fatalf("conformance: %s must return a receipt, got a nil *connector.Receipt and no error", rule)
	}
	got := e.deliveredSince(t, mark)
	if len(got) != 1 {
		t.Fatalf("conformance: %s must deliver exactly one message, Harness.Delivered reports %d", rule, len(got))
	}
	return r, got[0]
}

// expectBody sends m, which rule says must deliver exactly want.
func (e *env) expectBody(t *testing.T, rule string, m *connector.Message, want string) {
	t.Helper()
	_, d := e.sendOK(t, rule, m)
	if d.Body != want {
		t.Errorf("conformance: %s must deliver the body %q, delivered %q", rule, want, d.Body)
	}
}

// expectFailure sends m with ctx, which rule says must fail with reason want and deliver
// nothing, and returns the error.
func (e *env) expectFailure(t *testing.T, ctx context.Context, rule string, m *connector.Message, want connector.Reason) *connector.Error {
	t.Helper()
	mark := len(e.h.Delivered(t))
	r, err := e.send(t, ctx, m)
	ce := checkReason(t, rule, r, err, want)
	if n := len(e.deliveredSince(t, mark)); n > 0 {
		t.Errorf("conformance: %s must deliver nothing, delivered %d message(s)", rule, n)
	}
	return ce
}

// checkReason checks that a Send that rule says must fail with reason want did, and returns
// its *connector.Error. It fails the test otherwise.
func checkReason(t *testing.T, rule string, r *connector.Receipt, err error, want connector.Reason) *connector.Error {
	t.Helper()
	if err == nil {
		t.Fatalf("conformance: %s must fail with reason %s, got success (receipt %+v)", rule, want, r)
	}
	ce, p := contract.Failure(rule, err, want)
	report(t, p)
	if ce == nil {
		t.FailNow()
	}
	return ce
}

// show renders a configuration for a failure message, cut short when long.
func show(cfg []byte) string {
	const maxLen = 80
	if cfg == nil {
		return "a nil config"
	}
	s := string(cfg)
	if len(s) > maxLen {
		s = s[:maxLen] + "..."
	}
	return fmt.Sprintf("the config %q", s)
}

// awaitStalled waits for the result of a Send that was blocked in the vendor when its context
// ended. A connector that ignores its context would block until the stall is released, so a
// hang is turned into a clear failure once three quarters of the time left before the test's
// -timeout has passed (there is no limit without one). This bounds a hang; it asserts nothing
// about how fast a conforming connector returns.
func awaitStalled(t *testing.T, done <-chan sendResult, release func(), rule string) sendResult {
	t.Helper()
	dl, ok := t.Deadline()
	if !ok {
		return <-done
	}
	timer := time.NewTimer(time.Until(dl) * 3 / 4)
	defer timer.Stop()
	select {
	case res := <-done:
		return res
	case <-timer.C:
	}
	release()
	// Give the Send a chance to return now that the vendor answers, so that it does not
	// outlive the test; a connector that hangs even then is left behind.
	grace := time.NewTimer(time.Until(dl) / 2)
	defer grace.Stop()
	select {
	case <-done:
	case <-grace.C:
	}
	t.Fatalf("conformance: %s, but it was still blocked in the vendor long after its context ended "+
		"(the test was about to reach its -timeout); Send must return as soon as its context is cancelled or its deadline passes", rule)
	return sendResult{}
}
