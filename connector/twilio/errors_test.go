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
	"github.com/sms-connector/sms-connector/connector/httpvendor"
)

// TestClassify covers what the emulator cannot provoke: codes Send's local checks pre-empt
// (21617, 21222, 21224), wrapped errors, DNS failures and unknown codes.
func TestClassify(t *testing.T) {
	rest := func(status, code int) error {
		return &twclient.TwilioRestError{Status: status, Code: code, Message: "m", MoreInfo: fmt.Sprintf("https://www.twilio.com/docs/errors/%d", code)}
	}
	withStatus := func(status int, h http.Header) *httpvendor.Transport {
		return &httpvendor.Transport{Status: status, Header: h}
	}
	tests := []struct {
		name   string
		err    error
		rt     *httpvendor.Transport
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
		{"decode error, no status seen", errors.New("error decoding the response for an HTTP error code: 504: invalid character '<'"), nil, connector.ReasonProviderOutcomeUnknown, ""},
		{"2xx with a body that is not a message", errors.New("invalid character 'x'"), withStatus(201, nil), connector.ReasonProviderInvalidResponse, ""},
		{"no response at all", errors.New("something"), nil, connector.ReasonProviderOutcomeUnknown, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rt := tt.rt
			if rt == nil {
				rt = &httpvendor.Transport{}
			}
			ctx := context.Background()
			e := classify(ctx, ctx, rt, tt.err)
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
		if got := classify(tt.ctx, tt.actx, &httpvendor.Transport{}, tt.err).Reason; got != tt.want {
			t.Errorf("%s: %s, want %s", tt.name, got, tt.want)
		}
	}
}
