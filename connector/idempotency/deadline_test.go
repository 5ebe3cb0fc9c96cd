package idempotency_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/sms-connector/sms-connector/connector"
	"github.com/sms-connector/sms-connector/connector/idempotency"
	"github.com/sms-connector/sms-connector/connector/twilio"
	"github.com/sms-connector/sms-connector/connector/twilio/twiliotest"
)

// vendorTimeout is how long the vendors of TestTimeoutOfTheCallersDeadlineIsNotStored take to
// give up on their first request.
const vendorTimeout = 20 * time.Millisecond

// timingOutVendor stands for a vendor connector whose first request is never answered. Like
// the Twilio connector, it bounds the attempt by its own timeout within the caller's context
// and, when that ends, answers PROVIDER_TIMEOUT, saying whether the caller's deadline or its
// own timeout passed (CANCELLED when the caller cancelled). Later requests are answered at once.
type timingOutVendor struct {
	mu    sync.Mutex
	calls int
}

func (v *timingOutVendor) Send(ctx context.Context, msg *connector.Message) (*connector.Receipt, error) {
	v.mu.Lock()
	v.calls++
	call := v.calls
	v.mu.Unlock()
	if call > 1 {
		return &connector.Receipt{MessageID: fmt.Sprint("SM", call), Status: "queued", To: msg.To, Segments: 1}, nil
	}
	actx, cancel := context.WithTimeout(ctx, vendorTimeout)
	defer cancel()
	<-actx.Done()
	e := &connector.Error{Provider: "timing-out", Err: fmt.Errorf("timing-out: create message: %w", actx.Err())}
	switch {
	case errors.Is(ctx.Err(), context.Canceled):
		e.Reason, e.Message = connector.ReasonCancelled, "the request was cancelled while waiting for the vendor; the message may or may not have been created"
	case ctx.Err() != nil:
		e.Reason, e.Message = connector.ReasonProviderTimeout, "the request's deadline passed while waiting for the vendor; the message may or may not have been created"
	default:
		e.Reason, e.Message = connector.ReasonProviderTimeout, fmt.Sprintf("the vendor did not answer within the connector's %v timeout; the message may or may not have been created", vendorTimeout)
	}
	return nil, e
}

func (v *timingOutVendor) ValidateConfig(context.Context, json.RawMessage) ([]connector.Violation, error) {
	return nil, nil
}

func (v *timingOutVendor) Metadata(context.Context) (*connector.Metadata, error) {
	return &connector.Metadata{ID: "timing-out"}, nil
}

// Calls reports how many sends reached the vendor.
func (v *timingOutVendor) Calls() int {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.calls
}

// timingOutTwilio is the Twilio connector with a 20 ms attempt timeout, in front of the
// emulator answering its first request after 40 ms and the next ones at once.
func timingOutTwilio(t *testing.T) (connector.SmsConnector, json.RawMessage, func() int, func()) {
	t.Helper()
	srv := twiliotest.NewServer()
	t.Cleanup(srv.Close)
	srv.SetLatency(2 * vendorTimeout)
	tw, err := twilio.New(twilio.Options{APIURL: srv.URL, Timeout: vendorTimeout})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = tw.Close() })
	cfg, err := json.Marshal(map[string]any{
		"accountSID": twiliotest.SandboxAccountSID,
		"authToken":  twiliotest.SandboxAuthToken,
		"from":       twiliotest.FromValid,
		"templates":  []any{map[string]any{"usageType": "Generic", "content": "Your code is {{code}}"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	return tw, cfg, srv.Requests, func() { srv.SetLatency(0) }
}

// TestTimeoutOfTheCallersDeadlineIsNotStored: when the first caller's own deadline ends its
// send, the PROVIDER_TIMEOUT it gets is not stored, so a retry with the same key sends again;
// when the vendor's own timeout ends it (the caller is still there), the answer is stored and
// replayed, since the SMS may exist.
func TestTimeoutOfTheCallersDeadlineIsNotStored(t *testing.T) {
	vendors := []struct {
		name string
		make func(t *testing.T) (next connector.SmsConnector, config json.RawMessage, calls func() int, answerNow func())
	}{
		{"vendor double", func(*testing.T) (connector.SmsConnector, json.RawMessage, func() int, func()) {
			v := &timingOutVendor{}
			return v, json.RawMessage(`{"tenant":"a"}`), v.Calls, func() {}
		}},
		{"twilio emulator", timingOutTwilio},
	}
	cases := []struct {
		name     string
		deadline time.Duration // of the first caller; 0: none
		stored   bool
	}{
		{"first caller's 5 ms deadline", 5 * time.Millisecond, false},
		{"vendor's 20 ms timeout", 0, true},
	}
	for _, v := range vendors {
		for _, tt := range cases {
			t.Run(v.name+"/"+tt.name, func(t *testing.T) {
				next, config, calls, answerNow := v.make(t)
				c, err := idempotency.New(next, idempotency.Options{})
				if err != nil {
					t.Fatal(err)
				}
				msg := func() *connector.Message {
					return &connector.Message{To: "+14155550123", UsageType: connector.UsageSignIn, Config: config,
						IdempotencyKey: "signin-5ms", Payload: connector.Payload{Code: "424242"}}
				}

				ctx, cancel := context.Background(), context.CancelFunc(func() {})
				if tt.deadline > 0 {
					ctx, cancel = context.WithTimeout(ctx, tt.deadline)
				}
				_, first := c.Send(ctx, msg())
				cancel()
				if connector.ReasonOf(first) != connector.ReasonProviderTimeout {
					t.Fatalf("first send: %v, want PROVIDER_TIMEOUT", first)
				}

				answerNow()
				before := calls()
				r, err := c.Send(context.Background(), msg())
				switch sent := calls() - before; {
				case tt.stored && (r != nil || err == nil || err.Error() != first.Error() || sent != 0):
					t.Errorf("retry: %+v, %v after %d more requests; want the stored %v and no request", r, err, sent, first)
				case !tt.stored && (err != nil || r == nil || r.MessageID == "" || sent != 1):
					t.Errorf("retry: %+v, %v after %d more requests; want a new send's receipt", r, err, sent)
				}
			})
		}
	}
}
