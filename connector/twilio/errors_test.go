package twilio

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"testing"
	"time"

	twclient "github.com/twilio/twilio-go/client"

	"github.com/sms-connector/sms-connector/connector"
)

// TestClassify covers what the emulator cannot provoke: codes Send's local checks pre-empt
// (21617, 21222, 21224), wrapped errors, DNS failures and unknown codes.
func TestClassify(t *testing.T) {
	c := &Connector{timeout: DefaultTimeout}
	rest := func(status, code int) error {
		return &twclient.TwilioRestError{Status: status, Code: code, Message: "m", MoreInfo: fmt.Sprintf("https://www.twilio.com/docs/errors/%d", code)}
	}
	withStatus := func(status int, h http.Header) *attemptTransport {
		return &attemptTransport{resp: &http.Response{StatusCode: status, Header: h}}
	}
	tests := []struct {
		name   string
		err    error
		rt     *attemptTransport
		reason connector.Reason
		code   string
	}{
		{"21617", rest(400, 21617), nil, connector.ReasonMessageTooLong, "21617"},
		{"21222", rest(400, 21222), nil, connector.ReasonInvalidConfig, "21222"},
		{"21224", rest(400, 21224), nil, connector.ReasonInvalidConfig, "21224"},
		{"wrapped rest error", fmt.Errorf("outer: %w", rest(400, 21211)), nil, connector.ReasonInvalidPhoneNumber, "21211"},
		{"unknown 4xx code", rest(400, 30001), nil, connector.ReasonProviderRejected, "30001"},
		{"unknown 429 code", rest(429, 99999), nil, connector.ReasonProviderRateLimited, "99999"},
		{"unknown 5xx code", rest(503, 20503), nil, connector.ReasonProviderOutcomeUnknown, "20503"},
		{"status from the response", &twclient.TwilioRestError{Code: 0}, withStatus(502, nil), connector.ReasonProviderOutcomeUnknown, ""},
		{"DNS failure", &url.Error{Op: "Post", URL: "https://api.twilio.com", Err: &net.OpError{Op: "dial", Net: "tcp", Err: &net.DNSError{Err: "no such host", Name: "api.twilio.com"}}}, nil, connector.ReasonProviderUnavailable, ""},
		{"read after write", &url.Error{Op: "Post", URL: "https://api.twilio.com", Err: &net.OpError{Op: "read", Net: "tcp", Err: errors.New("connection reset by peer")}}, nil, connector.ReasonProviderOutcomeUnknown, ""},
		{"EOF", &url.Error{Op: "Post", URL: "https://api.twilio.com", Err: errors.New("EOF")}, nil, connector.ReasonProviderOutcomeUnknown, ""},
		{"decode error, status in text only", errors.New("error decoding the response for an HTTP error code: 504: invalid character '<'"), nil, connector.ReasonProviderOutcomeUnknown, ""},
		{"2xx with a body that is not a message", errors.New("invalid character 'x'"), withStatus(201, nil), connector.ReasonProviderInvalidResponse, ""},
		{"no response at all", errors.New("something"), nil, connector.ReasonProviderOutcomeUnknown, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rt := tt.rt
			if rt == nil {
				rt = &attemptTransport{}
			}
			ctx := context.Background()
			e := c.classify(ctx, ctx, rt, tt.err)
			if e.Reason != tt.reason || e.ProviderCode != tt.code || e.Provider != Provider {
				t.Errorf("got %s %q, want %s %q: %v", e.Reason, e.ProviderCode, tt.reason, tt.code, e)
			}
			if !errors.Is(e, tt.err) {
				t.Errorf("%v does not wrap the cause", e)
			}
		})
	}
}

func TestClassifyContext(t *testing.T) {
	c := &Connector{timeout: time.Second}
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	expired, cancel2 := context.WithDeadline(context.Background(), time.Unix(1, 0))
	defer cancel2()
	live := context.Background()
	urlErr := &url.Error{Op: "Post", URL: "u", Err: context.Canceled}
	tests := []struct {
		name      string
		ctx, actx context.Context
		err       error
		want      connector.Reason
	}{
		{"caller cancelled", cancelled, cancelled, urlErr, connector.ReasonCancelled},
		{"RPC deadline", expired, expired, urlErr, connector.ReasonProviderTimeout},
		{"attempt timeout", live, expired, urlErr, connector.ReasonProviderTimeout},
		{"Twilio's answer wins over a late cancel", cancelled, cancelled, &twclient.TwilioRestError{Status: 400, Code: 21211}, connector.ReasonInvalidPhoneNumber},
		{"dial error after cancel is still cancel", cancelled, cancelled, &url.Error{Op: "Post", Err: &net.OpError{Op: "dial", Err: context.Canceled}}, connector.ReasonCancelled},
	}
	for _, tt := range tests {
		if got := c.classify(tt.ctx, tt.actx, &attemptTransport{}, tt.err).Reason; got != tt.want {
			t.Errorf("%s: %s, want %s", tt.name, got, tt.want)
		}
	}
}

func TestRetryAfter(t *testing.T) {
	tests := []struct {
		h    string
		want time.Duration
	}{
		{"", DefaultRetryAfter},
		{"5", 5 * time.Second},
		{" 7 ", 7 * time.Second},
		{"0", DefaultRetryAfter},
		{"-3", DefaultRetryAfter},
		{"soon", DefaultRetryAfter},
		{"999999999999", time.Hour},
		{time.Now().Add(-time.Minute).UTC().Format(http.TimeFormat), DefaultRetryAfter},
		{time.Now().Add(48 * time.Hour).UTC().Format(http.TimeFormat), time.Hour},
	}
	for _, tt := range tests {
		if got := retryAfter(tt.h); got != tt.want {
			t.Errorf("retryAfter(%q) = %v, want %v", tt.h, got, tt.want)
		}
	}
	// An HTTP date some minutes ahead: about that long (the clock moves between the calls).
	if got := retryAfter(time.Now().Add(10 * time.Minute).UTC().Format(http.TimeFormat)); got < 9*time.Minute || got > 10*time.Minute {
		t.Errorf("retryAfter(date in 10m) = %v", got)
	}
}
