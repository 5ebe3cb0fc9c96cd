// Package httpvendor holds what every connector that calls an SMS vendor over HTTP needs and
// what has nothing to do with any one vendor: binding the vendor SDK's requests to the caller's
// context, refusing redirects, and turning a failed call into a connector.Error whose reason
// says whether the message may exist, and so whether trying again is safe.
//
// A vendor has no idempotency key as a rule, so the one question that matters after a failure
// is whether the vendor can have processed the request:
//
//   - never sent (the connection could not be opened) or refused unprocessed (HTTP 429): safe to
//     retry, PROVIDER_UNAVAILABLE or PROVIDER_RATE_LIMITED, both with a RetryAfter;
//   - may have been sent (a 5xx, a connection lost or a timeout after the request was written):
//     PROVIDER_OUTCOME_UNKNOWN or PROVIDER_TIMEOUT, never with a RetryAfter, since a blind retry
//     can send the user a second code;
//   - the caller's context ended: CANCELLED, or PROVIDER_TIMEOUT when its deadline passed.
//
// A connector makes a Transport per attempt over one shared base transport, sends through
// Transport.Client (handing it to the vendor's SDK, or doing its own requests), maps the
// vendor's own error codes itself, and hands every other failure to Vendor.Failure; Retryable
// then says which failures to try again. The Twilio connector (connector/twilio) is the worked
// example with a vendor SDK, examples/skeleton-connector one without; the recipe is
// docs/writing-a-connector.md.
package httpvendor

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/sms-connector/sms-connector/connector"
)

// DefaultRetryAfter is the RetryAfter of a failure that is safe to retry when the vendor's
// answer names no delay: a 429 without a usable Retry-After header, or a connection that could
// not be opened.
const DefaultRetryAfter = time.Second

// MaxRetryAfter caps the delay of a Retry-After header, so that a broken proxy cannot park
// callers for days.
const MaxRetryAfter = time.Hour

// drainLimit is how much of a response body Close reads before closing it: enough for any
// error document, so that the connection goes back to the pool, and no more.
const drainLimit = 64 << 10

// Transport is the http.RoundTripper of one call to a vendor. Vendor SDKs often build their
// requests without a context; Transport sends each one with Context instead, so the caller's
// deadline and cancellation abort the HTTP call. It remembers the last response's status and
// header, which an SDK's error seldom reports and Vendor.Failure needs.
//
// A Transport serves one call: make one per attempt, over a Base shared by every call (one
// *http.Transport per process, never one per request, so calls share its connections).
type Transport struct {
	// Base sends the requests.
	Base http.RoundTripper
	// Context bounds every request of the call: the caller's context, usually with the
	// attempt's own timeout.
	Context context.Context
	// BaseURL, when set, replaces the scheme and host of every request: an operator's proxy
	// or an emulator in place of the vendor's fixed API host.
	BaseURL *url.URL

	// Status is the HTTP status of the last response, 0 until one arrives. RoundTrip sets it.
	Status int
	// Header is the header of the last response, nil until one arrives. RoundTrip sets it.
	Header http.Header

	body io.ReadCloser // the last response's body, for Close
}

// RoundTrip sends a copy of req bound to t.Context, to t.BaseURL when set. The response's
// body drains before it closes, so that an SDK that closes it early still leaves the
// connection reusable.
func (t *Transport) RoundTrip(req *http.Request) (*http.Response, error) {
	r := req.Clone(t.Context)
	if t.BaseURL != nil {
		r.URL.Scheme, r.URL.Host = t.BaseURL.Scheme, t.BaseURL.Host
		r.Host = ""
	}
	resp, err := t.Base.RoundTrip(r)
	if resp != nil {
		t.Status, t.Header = resp.StatusCode, resp.Header
		if resp.Body != nil {
			resp.Body = &drainingBody{ReadCloser: resp.Body}
			t.body = resp.Body
		}
	}
	return resp, err
}

// Client returns an http.Client that sends through t and never follows a redirect.
func (t *Transport) Client() *http.Client {
	return &http.Client{Transport: t, CheckRedirect: NoRedirect}
}

// Close drains and closes the last response's body, which SDKs leave open on error answers.
// Call it when the call is over, before its context is cancelled.
func (t *Transport) Close() {
	if t.body != nil {
		_ = t.body.Close()
	}
}

// drainingBody is a response body whose Close reads what is left (up to drainLimit) first.
type drainingBody struct {
	io.ReadCloser
	closed bool
}

// Close drains the body, then closes it; only the first call does anything.
func (b *drainingBody) Close() error {
	if b.closed {
		return nil
	}
	b.closed = true
	_, _ = io.Copy(io.Discard, io.LimitReader(b.ReadCloser, drainLimit))
	return b.ReadCloser.Close()
}

// NoRedirect is an http.Client CheckRedirect that returns a 3xx answer as it is. A vendor's API
// does not redirect a send, and following a redirect would replay the credentials to another
// location.
func NoRedirect(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }

// RetryAfter returns the delay a Retry-After header value asks for, in seconds or as an HTTP
// date, capped at MaxRetryAfter; 0 when h is empty, malformed or not in the future.
func RetryAfter(h string) time.Duration {
	h = strings.TrimSpace(h)
	var d time.Duration
	if secs, err := strconv.ParseInt(h, 10, 64); err == nil {
		if secs > int64(MaxRetryAfter/time.Second) {
			return MaxRetryAfter
		}
		d = time.Duration(secs) * time.Second
	} else if t, err := http.ParseTime(h); err == nil {
		d = time.Until(t).Round(time.Second)
	}
	return min(max(d, 0), MaxRetryAfter)
}

// StatusReason returns the reason of a call the vendor answered with an HTTP status its own
// error codes did not explain: 429 PROVIDER_RATE_LIMITED, 401 PROVIDER_AUTH_FAILED, another
// 4xx PROVIDER_REJECTED, a 5xx PROVIDER_OUTCOME_UNKNOWN (the vendor may have acted before it
// failed), a 2xx or 3xx PROVIDER_INVALID_RESPONSE (the call failed although the vendor did not
// report an error: its answer is not what was asked for), anything else
// PROVIDER_OUTCOME_UNKNOWN.
func StatusReason(status int) connector.Reason {
	switch {
	case status == http.StatusTooManyRequests:
		return connector.ReasonProviderRateLimited
	case status == http.StatusUnauthorized:
		return connector.ReasonProviderAuthFailed
	case status >= 500 && status <= 599:
		return connector.ReasonProviderOutcomeUnknown
	case status >= 400 && status <= 499:
		return connector.ReasonProviderRejected
	case status >= 200 && status <= 399:
		return connector.ReasonProviderInvalidResponse
	}
	return connector.ReasonProviderOutcomeUnknown
}

// Vendor names a vendor in the errors Failure and Answer build.
type Vendor struct {
	// Provider is connector.Error.Provider: the vendor's stable id, like "twilio".
	Provider string
	// Name is the vendor as messages name it, like "Twilio".
	Name string
}

// unknown ends the message of every failure after which the message may exist.
const unknown = "; the message may or may not have been created"

// Failure returns the *connector.Error of a call that failed with err, for what the vendor's
// own error codes do not explain (map those first). ctx is the caller's context, attempt the
// call's own (ctx with the attempt's timeout), t the call's Transport. Err is err, which
// should already say what was being done ("twilio: create message: ..."). In order:
//
//   - ctx ended: CANCELLED, or PROVIDER_TIMEOUT when its deadline passed;
//   - attempt's deadline passed: PROVIDER_TIMEOUT;
//   - the vendor answered: Answer's error for its status;
//   - the connection could not be opened (dial, proxy, DNS or certificate failure), so
//     nothing was sent: PROVIDER_UNAVAILABLE, with RetryAfter DefaultRetryAfter;
//   - a network timeout: PROVIDER_TIMEOUT; anything else: PROVIDER_OUTCOME_UNKNOWN.
func (v Vendor) Failure(ctx, attempt context.Context, t *Transport, err error) *connector.Error {
	e := &connector.Error{Provider: v.Provider, Err: err}
	var nerr net.Error
	switch {
	case errors.Is(ctx.Err(), context.Canceled):
		e.Reason, e.Message = connector.ReasonCancelled, "the request was cancelled while waiting for "+v.Name+unknown
	case ctx.Err() != nil:
		e.Reason, e.Message = connector.ReasonProviderTimeout, "the request's deadline passed while waiting for "+v.Name+unknown
	case attempt.Err() != nil:
		e.Reason, e.Message = connector.ReasonProviderTimeout, v.Name+" did not answer within the connector's timeout"+unknown
	case t.Status != 0:
		return v.Answer(t.Status, t.Header.Get("Retry-After"), err)
	case notSent(err):
		e.Reason, e.Message = connector.ReasonProviderUnavailable, "could not connect to "+v.Name+"; the message was not sent"
		e.RetryAfter = DefaultRetryAfter
	case errors.As(err, &nerr) && nerr.Timeout(), errors.Is(err, context.DeadlineExceeded):
		e.Reason, e.Message = connector.ReasonProviderTimeout, "timed out waiting for "+v.Name+unknown
	default:
		e.Reason, e.Message = connector.ReasonProviderOutcomeUnknown, "the request to "+v.Name+" failed after it may have been sent"+unknown
	}
	return e
}

// Answer returns the *connector.Error of a call the vendor answered with HTTP status, for an
// answer its own error codes do not explain: StatusReason's reason, and for a 429 the delay of
// retryAfter (the Retry-After header), DefaultRetryAfter when it names none. Err is err.
func (v Vendor) Answer(status int, retryAfter string, err error) *connector.Error {
	e := &connector.Error{Reason: StatusReason(status), Provider: v.Provider, Err: err}
	switch e.Reason {
	case connector.ReasonProviderRateLimited:
		e.Message = fmt.Sprintf("%s is throttling the account (HTTP %d); the message was not created, retry after the delay", v.Name, status)
		e.RetryAfter = RetryAfter(retryAfter)
		if e.RetryAfter == 0 {
			e.RetryAfter = DefaultRetryAfter
		}
	case connector.ReasonProviderAuthFailed:
		e.Message = fmt.Sprintf("%s rejected the credentials (HTTP %d)", v.Name, status)
	case connector.ReasonProviderRejected:
		e.Message = fmt.Sprintf("%s refused the request with HTTP %d", v.Name, status)
	case connector.ReasonProviderInvalidResponse:
		e.Message = fmt.Sprintf("%s answered HTTP %d with a body that is not a message%s", v.Name, status, unknown)
	default:
		e.Message = fmt.Sprintf("%s failed with HTTP %d%s", v.Name, status, unknown)
	}
	return e
}

// Retryable reports whether e proves the vendor never processed the call, so that another
// attempt cannot send a second message, and trying again soon may work: the vendor throttled it
// (PROVIDER_RATE_LIMITED), or the connection failed in a way that may pass (a refused or
// timed-out dial, a temporary DNS failure). A name that does not exist or a certificate that
// does not verify is PROVIDER_UNAVAILABLE too, but will not change in a few hundred
// milliseconds.
func Retryable(e *connector.Error) bool {
	switch e.Reason {
	case connector.ReasonProviderRateLimited:
		return true
	case connector.ReasonProviderUnavailable:
		var dns *net.DNSError
		if errors.As(e.Err, &dns) {
			return dns.IsTemporary || dns.IsTimeout
		}
		var op *net.OpError
		return errors.As(e.Err, &op) && (op.Op == "dial" || op.Op == "proxyconnect")
	}
	return false
}

// notSent reports whether err proves the request never left: the connection (or the proxy
// connection, or TLS verification) failed before anything was written.
func notSent(err error) bool {
	var op *net.OpError
	if errors.As(err, &op) && (op.Op == "dial" || op.Op == "proxyconnect") {
		return true
	}
	var dns *net.DNSError
	var cert *tls.CertificateVerificationError
	return errors.As(err, &dns) || errors.As(err, &cert)
}
