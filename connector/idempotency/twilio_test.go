package idempotency_test

import (
	"context"
	"encoding/json"
	"sync"
	"testing"
	"time"

	"github.com/sms-connector/sms-connector/connector"
	"github.com/sms-connector/sms-connector/connector/guard"
	"github.com/sms-connector/sms-connector/connector/idempotency"
	"github.com/sms-connector/sms-connector/connector/twilio"
	"github.com/sms-connector/sms-connector/connector/twilio/twiliotest"
)

// TestThousandDuplicatesOneSMS sends one message 1000 times at once with the same idempotency
// key, through the real Twilio connector and the emulator (which answers after 50 ms, so that
// most duplicates arrive while the first send is in flight): exactly one SMS, and 1000
// identical receipts. With the abuse guard inside, the duplicates are not counted as sends to
// the same recipient either.
func TestThousandDuplicatesOneSMS(t *testing.T) {
	tests := []struct {
		name  string
		stack func(t *testing.T, tw connector.SmsConnector) connector.SmsConnector
	}{
		{"idempotency(twilio)", func(_ *testing.T, tw connector.SmsConnector) connector.SmsConnector { return tw }},
		{"idempotency(guard(twilio))", func(t *testing.T, tw connector.SmsConnector) connector.SmsConnector {
			g, err := guard.New(tw, guard.DefaultPolicy())
			if err != nil {
				t.Fatal(err)
			}
			return g
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := twiliotest.NewServer()
			t.Cleanup(srv.Close)
			srv.SetLatency(50 * time.Millisecond)
			tw, err := twilio.New(twilio.Options{APIURL: srv.URL})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = tw.Close() })
			c, err := idempotency.New(tt.stack(t, tw), idempotency.Options{})
			if err != nil {
				t.Fatal(err)
			}
			cfg, err := json.Marshal(map[string]any{
				"accountSID": twiliotest.SandboxAccountSID,
				"authToken":  twiliotest.SandboxAuthToken,
				"from":       twiliotest.FromValid,
				"templates":  []any{map[string]any{"usageType": "Generic", "content": "Your code is {{code}}"}},
			})
			if err != nil {
				t.Fatal(err)
			}

			const n = 1000
			receipts := make([]*connector.Receipt, n)
			errs := make([]error, n)
			var wg sync.WaitGroup
			for i := range n {
				wg.Go(func() {
					receipts[i], errs[i] = c.Send(context.Background(), &connector.Message{
						To: "+14155550123", UsageType: connector.UsageSignIn, Config: cfg,
						Payload: connector.Payload{Code: "424242"}, IdempotencyKey: "signin-7f3a",
						ClientIP: "192.0.2.1",
					})
				})
			}
			wg.Wait()

			msgs := srv.Messages()
			if len(msgs) != 1 || srv.Requests() != 1 {
				t.Fatalf("emulator: %d messages, %d requests; want exactly 1", len(msgs), srv.Requests())
			}
			want := connector.Receipt{MessageID: msgs[0].Sid, Status: "queued", Segments: 1, Encoding: connector.EncodingGSM7,
				To: "+14155550123", Sender: twiliotest.FromValid}
			for i := range n {
				if errs[i] != nil {
					t.Fatalf("send %d: %v", i, errs[i])
				}
				if *receipts[i] != want {
					t.Fatalf("receipt %d = %+v, want %+v", i, *receipts[i], want)
				}
			}
		})
	}
}
