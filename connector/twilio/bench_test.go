package twilio

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/sms-connector/sms-connector/connector"
	"github.com/sms-connector/sms-connector/connector/twilio/twiliotest"
)

// twilioMessageJSON is a message resource as Twilio answers a create call (201), with every
// field Twilio sends: what the connector's client decodes on each successful Send.
const twilioMessageJSON = `{"account_sid":"AC0123456789abcdef0123456789abcdef","api_version":"2010-04-01",` +
	`"body":"Sign in with 123456 at Acme","date_created":"Thu, 24 Aug 2023 05:01:45 +0000",` +
	`"date_sent":null,"date_updated":"Thu, 24 Aug 2023 05:01:45 +0000","direction":"outbound-api",` +
	`"error_code":null,"error_message":null,"from":null,"messaging_service_sid":"MG00000000000000000000000000000001",` +
	`"num_media":"0","num_segments":"0","price":null,"price_unit":"USD",` +
	`"sid":"SM0123456789abcdef0123456789abcdef","status":"accepted",` +
	`"subresource_uris":{"media":"/2010-04-01/Accounts/AC0123456789abcdef0123456789abcdef/Messages/SM0123456789abcdef0123456789abcdef/Media.json",` +
	`"feedback":"/2010-04-01/Accounts/AC0123456789abcdef0123456789abcdef/Messages/SM0123456789abcdef0123456789abcdef/Feedback.json"},` +
	`"to":"+14155550123","uri":"/2010-04-01/Accounts/AC0123456789abcdef0123456789abcdef/Messages/SM0123456789abcdef0123456789abcdef.json"}`

// cannedTransport answers every request with twilioMessageJSON, without a network: it isolates
// the connector's own cost of a Send from the emulator's.
type cannedTransport struct{}

func (cannedTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.Body != nil {
		_, _ = io.Copy(io.Discard, req.Body)
		_ = req.Body.Close()
	}
	return &http.Response{
		StatusCode:    http.StatusCreated,
		Header:        http.Header{"Content-Type": {"application/json"}},
		Body:          io.NopCloser(strings.NewReader(twilioMessageJSON)),
		ContentLength: int64(len(twilioMessageJSON)),
		Request:       req,
	}, nil
}

// BenchmarkSend measures one successful Send with a cached configuration:
//
//   - emulator: over loopback HTTP to an in-process twiliotest emulator. Its figures include
//     the emulator's own work (it runs in the same process), which the connector does not
//     change.
//   - canned: through a RoundTripper that answers a canned Twilio message at once, so the
//     figures are the connector's and twilio-go's alone.
func BenchmarkSend(b *testing.B) {
	cfg, err := json.Marshal(map[string]any{
		"accountSID":              testAccount,
		"authToken":               emuToken,
		"fromMessagingServiceSID": emuService,
		"templates":               []any{tpl("SignIn", "Sign in with {{code}} at {{application.name}}")},
	})
	if err != nil {
		b.Fatal(err)
	}
	msg := &connector.Message{
		To:        recipient,
		UsageType: connector.UsageSignIn,
		Payload:   connector.Payload{Code: "123456", Variables: map[string]any{"application": map[string]any{"name": "Acme"}}},
		Config:    cfg,
	}
	run := func(b *testing.B, c *Connector, each func()) {
		b.Helper()
		ctx := context.Background()
		b.ReportAllocs()
		for i := 0; b.Loop(); i++ {
			if _, err := c.Send(ctx, msg); err != nil {
				b.Fatal(err)
			}
			if each != nil && i%1024 == 1023 {
				each()
			}
		}
	}

	b.Run("emulator", func(b *testing.B) {
		srv := twiliotest.NewServer(twiliotest.WithAccount(testAccount, emuToken))
		defer srv.Close()
		c, err := New(Options{APIURL: srv.URL})
		if err != nil {
			b.Fatal(err)
		}
		defer func() { _ = c.Close() }()
		// The emulator records every message; forget them now and then so that its memory
		// stays flat however long the benchmark runs.
		run(b, c, srv.Reset)
	})
	b.Run("canned", func(b *testing.B) {
		c, err := New(Options{Transport: cannedTransport{}})
		if err != nil {
			b.Fatal(err)
		}
		run(b, c, nil)
	})
}
