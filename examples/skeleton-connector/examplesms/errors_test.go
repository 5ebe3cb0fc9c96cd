package examplesms_test

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"example.com/examplesms-connector/examplesms"
	"github.com/sms-connector/sms-connector/connector"
)

// TestVendorAnswers checks how each kind of answer from the vendor becomes a reason: the
// vendor's own codes first, then httpvendor's classification of what they do not explain.
func TestVendorAnswers(t *testing.T) {
	tests := []struct {
		name       string
		status     int
		header     http.Header
		body       string
		want       connector.Reason
		retryAfter time.Duration
	}{
		{"vendor code", 400, nil, `{"error":{"code":"recipient_opted_out","message":"STOP"}}`, connector.ReasonRecipientOptedOut, 0},
		{"bad key", 401, nil, `{"error":{"code":"invalid_api_key"}}`, connector.ReasonProviderAuthFailed, 0},
		{"throttled", 429, http.Header{"Retry-After": {"7"}}, `{}`, connector.ReasonProviderRateLimited, 7 * time.Second},
		{"html 502", 502, nil, `<html>bad gateway</html>`, connector.ReasonProviderOutcomeUnknown, 0},
		{"redirect not followed", 302, http.Header{"Location": {"https://elsewhere.example/"}}, ``, connector.ReasonProviderInvalidResponse, 0},
		{"accepted without id", 201, nil, `{"status":"accepted"}`, connector.ReasonProviderInvalidResponse, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
				for k, v := range tc.header {
					w.Header()[k] = v
				}
				w.WriteHeader(tc.status)
				_, _ = w.Write([]byte(tc.body))
			}))
			defer srv.Close()
			e := sendOnce(t, srv.URL)
			if e.Reason != tc.want || e.RetryAfter != tc.retryAfter {
				t.Errorf("HTTP %d %s: got %s with RetryAfter %v, want %s with %v", tc.status, tc.body, e.Reason, e.RetryAfter, tc.want, tc.retryAfter)
			}
		})
	}
	t.Run("nothing listening", func(t *testing.T) {
		srv := httptest.NewServer(http.NotFoundHandler())
		srv.Close()
		if e := sendOnce(t, srv.URL); e.Reason != connector.ReasonProviderUnavailable || e.RetryAfter <= 0 {
			t.Errorf("a refused connection: got %s with RetryAfter %v, want PROVIDER_UNAVAILABLE with a delay", e.Reason, e.RetryAfter)
		}
	})
}

// sendOnce sends one message to the API at url and returns the *connector.Error it fails with.
func sendOnce(t *testing.T, url string) *connector.Error {
	t.Helper()
	c, err := examplesms.New(examplesms.Options{APIURL: url})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	msg := &connector.Message{To: "+14155550123", UsageType: connector.UsageSignIn,
		Payload: connector.Payload{Code: "123456"}, Config: config(t, func(map[string]any) {})}
	r, err := c.Send(t.Context(), msg)
	var e *connector.Error
	if !errors.As(err, &e) {
		t.Fatalf("Send returned %v, %v; want a *connector.Error", r, err)
	}
	return e
}
