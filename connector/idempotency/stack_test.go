package idempotency_test

import (
	"context"
	"encoding/json"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sms-connector/sms-connector/connector"
	"github.com/sms-connector/sms-connector/connector/console"
	"github.com/sms-connector/sms-connector/connector/guard"
	"github.com/sms-connector/sms-connector/connector/idempotency"
	"github.com/sms-connector/sms-connector/internal/testutil"
)

// slowWriter holds each write for a vendor's round trip, so that most duplicates of a send
// arrive while it is in flight.
type slowWriter struct{ testutil.Buffer }

func (w *slowWriter) Write(p []byte) (int, error) {
	time.Sleep(50 * time.Millisecond)
	return w.Buffer.Write(p)
}

// TestThousandDuplicatesOneSMS sends one message 1000 times at once with the same idempotency
// key, through the console connector, whose writes take 50 ms: exactly one message written,
// and 1000 identical receipts. With the abuse guard inside, the duplicates are not counted as
// sends to the same recipient either.
func TestThousandDuplicatesOneSMS(t *testing.T) {
	tests := []struct {
		name  string
		stack func(t *testing.T, vendor connector.SmsConnector) connector.SmsConnector
	}{
		{"idempotency(console)", func(_ *testing.T, vendor connector.SmsConnector) connector.SmsConnector { return vendor }},
		{"idempotency(guard(console))", func(t *testing.T, vendor connector.SmsConnector) connector.SmsConnector {
			g, err := guard.New(vendor, guard.Options{Policy: guard.DefaultPolicy()})
			if err != nil {
				t.Fatal(err)
			}
			return g
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out slowWriter
			c, err := idempotency.New(tt.stack(t, console.New(console.Options{Writer: &out})), idempotency.Options{})
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
						To: "+14155550123", UsageType: connector.UsageSignIn, Config: console.DefaultConfig(),
						Payload: connector.Payload{Code: "424242"}, IdempotencyKey: "signin-7f3a",
						ClientIP: "192.0.2.1",
					})
				})
			}
			wg.Wait()

			lines := strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n")
			if len(lines) != 1 {
				t.Fatalf("the vendor wrote %d messages; want exactly 1", len(lines))
			}
			var e console.Entry
			if err := json.Unmarshal([]byte(lines[0]), &e); err != nil {
				t.Fatal(err)
			}
			want := connector.Receipt{MessageID: e.ID, Status: console.Status, Segments: 1, Encoding: connector.EncodingGSM7,
				To: "+14155550123", Sender: e.Sender}
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
