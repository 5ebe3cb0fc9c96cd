package twilio

import (
	"context"
	"strings"
	"testing"
	"time"

	openapi "github.com/twilio/twilio-go/rest/api/v2010"

	"github.com/sms-connector/sms-connector/connector"
	"github.com/sms-connector/sms-connector/connector/twilio/twiliotest"
)

func TestMessageStatusFetchesTheMessage(t *testing.T) {
	tests := []struct {
		name     string
		cfg      func(t *testing.T) []byte
		status   string
		segments int
	}{
		{"sent from a number: queued", func(t *testing.T) []byte { return emuConfig(t, withFrom(twiliotest.FromValid)) }, "queued", 1},
		// A Messaging Service has picked no sender yet: Twilio reports num_segments "0".
		{"through a Messaging Service: accepted", func(t *testing.T) []byte { return emuConfig(t) }, "accepted", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv, c := emulator(t)
			cfg := tt.cfg(t)
			r, err := c.Send(context.Background(), message(cfg))
			if err != nil {
				t.Fatal(err)
			}
			st, err := c.MessageStatus(context.Background(), r.MessageID, cfg)
			if err != nil {
				t.Fatal(err)
			}
			created := srv.Messages()[0].DateCreated
			want := connector.MessageStatus{MessageID: r.MessageID, To: recipient, State: connector.DeliveryQueued,
				VendorStatus: tt.status, UpdatedAt: created, Segments: tt.segments}
			if *st != want {
				t.Errorf("MessageStatus = %+v, want %+v", *st, want)
			}
		})
	}
}

func TestMessageStatusFailures(t *testing.T) {
	srv, c := emulator(t)
	cfg := emuConfig(t)
	r, err := c.Send(context.Background(), message(cfg))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name     string
		id       string
		cfg      []byte
		reason   connector.Reason
		code     string
		requests int // requests that reach the emulator
	}{
		{"a SID Twilio does not know", "SM00000000000000000000000000000000", cfg, connector.ReasonMessageNotFound, "20404", 1},
		{"not a message SID: nothing asked", "../../Calls/CA00000000000000000000000000000000", cfg, connector.ReasonMessageNotFound, "", 0},
		{"a SID of another kind", "CA00000000000000000000000000000000", cfg, connector.ReasonMessageNotFound, "", 0},
		{"wrong credentials", r.MessageID, emuConfig(t, func(m map[string]any) { m["authToken"] = "WrongTokenWrongTokenWrongToken00" }),
			connector.ReasonProviderAuthFailed, "20003", 1},
		{"no config", r.MessageID, nil, connector.ReasonConfigMissing, "", 0},
		{"invalid config", r.MessageID, []byte(`{"accountSID":"nope"}`), connector.ReasonInvalidConfig, "", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := srv.Requests()
			st, err := c.MessageStatus(context.Background(), tt.id, tt.cfg)
			e := asError(t, err)
			if st != nil || e.Reason != tt.reason || e.ProviderCode != tt.code {
				t.Errorf("MessageStatus = %+v, %+v; want %s with code %q", st, e, tt.reason, tt.code)
			}
			if n := srv.Requests() - before; n != tt.requests {
				t.Errorf("%d requests reached Twilio, want %d", n, tt.requests)
			}
			checkNoSecrets(t, err)
		})
	}
}

// TestMessageStatusRetries proves that a read, which changes nothing, is retried after every
// transient failure, including those Send never retries (a 5xx, a connection lost mid-call).
func TestMessageStatusRetries(t *testing.T) {
	tests := []struct {
		name       string
		fault      twiliotest.Fault
		times      int
		wantReason connector.Reason // "" for success
		wantReqs   int
	}{
		{"429 twice then success", fault429, 2, "", 3},
		{"5xx JSON once then success", fault5xxJSON, 1, "", 2},
		{"5xx HTML twice then success", fault5xxHTML, 2, "", 3},
		{"reset once then success", faultReset, 1, "", 2},
		{"5xx storm", fault503JSON, -1, connector.ReasonProviderOutcomeUnknown, 3},
		{"redirect is not retried", faultRedirect, -1, connector.ReasonProviderInvalidResponse, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv, c, _ := retryEmulator(t, Options{})
			cfg := emuConfig(t)
			r, err := c.Send(context.Background(), message(cfg))
			if err != nil {
				t.Fatal(err)
			}
			srv.InjectFault(tt.fault, tt.times)
			before := srv.Requests()
			st, err := c.MessageStatus(context.Background(), r.MessageID, cfg)
			if n := srv.Requests() - before; n != tt.wantReqs {
				t.Errorf("%d requests, want %d", n, tt.wantReqs)
			}
			if tt.wantReason == "" {
				if err != nil || st.MessageID != r.MessageID {
					t.Fatalf("MessageStatus = %+v, %v", st, err)
				}
				return
			}
			e := asError(t, err)
			if e.Reason != tt.wantReason {
				t.Errorf("reason %s, want %s (%v)", e.Reason, tt.wantReason, e)
			}
			if strings.Contains(e.Message, "may or may not have been created") || !strings.Contains(e.Message, "status") {
				t.Errorf("Message %q speaks of a send, not of a read", e.Message)
			}
		})
	}
}

func TestMessageStatusAttemptTimeoutIsRetried(t *testing.T) {
	srv, c, _ := retryEmulator(t, Options{Timeout: 50 * time.Millisecond})
	cfg := emuConfig(t)
	r, err := c.Send(context.Background(), message(cfg))
	if err != nil {
		t.Fatal(err)
	}
	srv.SetLatency(time.Minute) // every attempt times out; Close aborts the waits
	before := srv.Requests()
	_, err = c.MessageStatus(context.Background(), r.MessageID, cfg)
	if e := asError(t, err); e.Reason != connector.ReasonProviderTimeout {
		t.Errorf("reason %s, want PROVIDER_TIMEOUT", e.Reason)
	}
	if n := srv.Requests() - before; n != DefaultMaxAttempts {
		t.Errorf("%d attempts, want %d", n, DefaultMaxAttempts)
	}
}

func TestMessageStatusMapping(t *testing.T) {
	p := func(s string) *string { return &s }
	code := func(n int) *int { return &n }
	const sid = "SM0123456789abcdef0123456789abcdef"
	updated := time.Date(2025, 7, 30, 20, 12, 31, 0, time.UTC)
	tests := []struct {
		name string
		in   openapi.ApiV2010Message
		want connector.MessageStatus
	}{
		{"delivered, priced", openapi.ApiV2010Message{Sid: p(sid), Status: p("delivered"), To: p(recipient),
			DateUpdated: p("Wed, 30 Jul 2025 20:12:31 +0000"), NumSegments: p("2"), Price: p("-0.01580"), PriceUnit: p("usd")},
			connector.MessageStatus{MessageID: sid, To: recipient, State: connector.DeliveryDelivered, VendorStatus: "delivered",
				UpdatedAt: updated, Segments: 2, Price: "-0.01580", PriceUnit: "USD"}},
		{"no price yet: no unit", openapi.ApiV2010Message{Sid: p(sid), Status: p("sent"), PriceUnit: p("USD")},
			connector.MessageStatus{MessageID: sid, State: connector.DeliverySent, VendorStatus: "sent"}},
		{"30003 unreachable", openapi.ApiV2010Message{Sid: p(sid), Status: p("undelivered"), ErrorCode: code(30003)},
			connector.MessageStatus{MessageID: sid, State: connector.DeliveryUndelivered, VendorStatus: "undelivered",
				Reason: connector.ReasonRecipientUnreachable, VendorCode: "30003"}},
		{"30004 blocked", openapi.ApiV2010Message{Sid: p(sid), Status: p("undelivered"), ErrorCode: code(30004)},
			connector.MessageStatus{MessageID: sid, State: connector.DeliveryUndelivered, VendorStatus: "undelivered",
				Reason: connector.ReasonProviderRejected, VendorCode: "30004"}},
		{"30005 unknown number", openapi.ApiV2010Message{Sid: p(sid), Status: p("undelivered"), ErrorCode: code(30005)},
			connector.MessageStatus{MessageID: sid, State: connector.DeliveryUndelivered, VendorStatus: "undelivered",
				Reason: connector.ReasonInvalidPhoneNumber, VendorCode: "30005"}},
		{"30006 landline", openapi.ApiV2010Message{Sid: p(sid), Status: p("undelivered"), ErrorCode: code(30006)},
			connector.MessageStatus{MessageID: sid, State: connector.DeliveryUndelivered, VendorStatus: "undelivered",
				Reason: connector.ReasonRecipientNotMobile, VendorCode: "30006"}},
		{"30007 spam", openapi.ApiV2010Message{Sid: p(sid), Status: p("undelivered"), ErrorCode: code(30007)},
			connector.MessageStatus{MessageID: sid, State: connector.DeliveryUndelivered, VendorStatus: "undelivered",
				Reason: connector.ReasonProviderRejected, VendorCode: "30007"}},
		{"30008 unknown error", openapi.ApiV2010Message{Sid: p(sid), Status: p("failed"), ErrorCode: code(30008)},
			connector.MessageStatus{MessageID: sid, State: connector.DeliveryFailed, VendorStatus: "failed",
				Reason: connector.ReasonProviderRejected, VendorCode: "30008"}},
		{"21610 opted out, the create call's reason", openapi.ApiV2010Message{Sid: p(sid), Status: p("failed"), ErrorCode: code(21610)},
			connector.MessageStatus{MessageID: sid, State: connector.DeliveryFailed, VendorStatus: "failed",
				Reason: connector.ReasonRecipientOptedOut, VendorCode: "21610"}},
		{"a code nobody maps", openapi.ApiV2010Message{Sid: p(sid), Status: p("undelivered"), ErrorCode: code(39999)},
			connector.MessageStatus{MessageID: sid, State: connector.DeliveryUndelivered, VendorStatus: "undelivered",
				Reason: connector.ReasonProviderRejected, VendorCode: "39999"}},
		{"failed without a code", openapi.ApiV2010Message{Sid: p(sid), Status: p("failed")},
			connector.MessageStatus{MessageID: sid, State: connector.DeliveryFailed, VendorStatus: "failed"}},
		{"a code on a delivered message is not a failure", openapi.ApiV2010Message{Sid: p(sid), Status: p("delivered"), ErrorCode: code(30003)},
			connector.MessageStatus{MessageID: sid, State: connector.DeliveryDelivered, VendorStatus: "delivered"}},
		{"an unparsable date and count", openapi.ApiV2010Message{Sid: p(sid), Status: p("queued"), DateUpdated: p("yesterday"), NumSegments: p("two")},
			connector.MessageStatus{MessageID: sid, State: connector.DeliveryQueued, VendorStatus: "queued"}},
	}
	words := map[string]connector.DeliveryState{
		"accepted": connector.DeliveryQueued, "scheduled": connector.DeliveryQueued, "queued": connector.DeliveryQueued,
		"sending": connector.DeliverySending, "sent": connector.DeliverySent, "delivered": connector.DeliveryDelivered,
		"read": connector.DeliveryDelivered, "undelivered": connector.DeliveryUndelivered, "partially_delivered": connector.DeliveryUndelivered,
		"failed": connector.DeliveryFailed, "canceled": connector.DeliveryFailed,
		"receiving": connector.DeliveryUnknown, "received": connector.DeliveryUnknown, "a-new-word": connector.DeliveryUnknown,
	}
	for word, state := range words {
		tests = append(tests, struct {
			name string
			in   openapi.ApiV2010Message
			want connector.MessageStatus
		}{"status " + word, openapi.ApiV2010Message{Sid: p(sid), Status: p(word)}, connector.MessageStatus{MessageID: sid, State: state, VendorStatus: word}})
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := messageStatus(&tt.in); *got != tt.want {
				t.Errorf("messageStatus = %+v, want %+v", *got, tt.want)
			}
		})
	}
}
