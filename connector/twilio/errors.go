package twilio

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"

	twclient "github.com/twilio/twilio-go/client"

	"github.com/sms-connector/sms-connector/connector"
)

// DefaultRetryAfter is the RetryAfter of a PROVIDER_RATE_LIMITED error when Twilio's answer
// carries no usable Retry-After header.
const DefaultRetryAfter = time.Second

// maxRetryAfter caps a Retry-After header, so a broken proxy cannot park callers for days.
const maxRetryAfter = time.Hour

// codeReason is how one Twilio error code maps to a reason, with the message we show instead
// of Twilio's own text (which we never pass on: it is not ours to vouch for).
type codeReason struct {
	reason  connector.Reason
	message string
}

// codeReasons maps the Twilio error codes of the create-message call to reasons; see the
// Twilio table in the design brief and the ErrorReason documentation in the proto.
var codeReasons = map[int]codeReason{
	20003: {connector.ReasonProviderAuthFailed, "Twilio rejected the credentials: check accountSID and authToken, or apiKeySID and apiKeySecret"},
	20404: {connector.ReasonProviderAccountNotFound, "Twilio does not know the account: check accountSID, and that the API key belongs to that account"},
	20429: {connector.ReasonProviderRateLimited, "Twilio is throttling the account (too many concurrent requests); the message was not created, retry after the delay"},
	21211: {connector.ReasonInvalidPhoneNumber, "Twilio says the recipient is not a valid phone number"},
	21212: {connector.ReasonInvalidSender, "Twilio refused the sender: from is not a valid phone number or alphanumeric sender ID for this account"},
	21606: {connector.ReasonInvalidSender, "Twilio refused the sender: from is not an SMS-capable phone number of this account"},
	21705: {connector.ReasonInvalidSender, "Twilio refused the sender: fromMessagingServiceSID is not a valid Messaging Service of this account"},
	21408: {connector.ReasonCountryNotPermitted, "the Twilio account's Geo Permissions do not allow SMS to the recipient's country"},
	21610: {connector.ReasonRecipientOptedOut, "the recipient has opted out of messages from this sender (replied STOP)"},
	21611: {connector.ReasonProviderQueueFull, "the sender's queue at Twilio is full; send more slowly or add senders"},
	21612: {connector.ReasonRecipientUnreachable, "Twilio cannot reach the recipient from this sender"},
	21614: {connector.ReasonRecipientNotMobile, "the recipient is not a mobile number and cannot receive SMS"},
	21635: {connector.ReasonRecipientNotMobile, "the recipient is a landline and cannot receive SMS"},
	21617: {connector.ReasonMessageTooLong, "Twilio says the message body is longer than 1600 characters: shorten the template"},
	// twilio-go's local checks of the credentials (nothing is sent); ParseConfig already
	// rejects such credentials, so these are a second line only.
	21222: {connector.ReasonInvalidConfig, "the Twilio username (accountSID or apiKeySID) may contain only letters and digits"},
	21224: {connector.ReasonInvalidConfig, "the Twilio password (authToken or apiKeySecret) may contain only letters and digits"},
}

// classify turns the failure of an attempt into a *connector.Error: the error of twilio-go's
// request, or of decoding the 2xx answer's body. ctx is the Send's context and actx the
// attempt's (ctx plus the attempt timeout); rt saw the HTTP exchange, if any.
//
// Order matters: an answer from Twilio wins over a context that expired just after it; a
// context that expired explains any transport error; only then does the transport error say
// whether the request can have reached Twilio.
func (c *Connector) classify(ctx, actx context.Context, rt *attemptTransport, err error) *connector.Error {
	e := &connector.Error{Provider: Provider, Err: fmt.Errorf("twilio: create message: %w", err)}
	unknown := "; the message may or may not have been created"

	var rest *twclient.TwilioRestError
	if errors.As(err, &rest) {
		fromRestError(e, rest, rt)
		return e
	}

	switch {
	case errors.Is(ctx.Err(), context.Canceled):
		e.Reason, e.Message = connector.ReasonCancelled, "the request was cancelled while waiting for Twilio"+unknown
		return e
	case ctx.Err() != nil:
		e.Reason, e.Message = connector.ReasonProviderTimeout, "the request's deadline passed while waiting for Twilio"+unknown
		return e
	case actx.Err() != nil:
		e.Reason, e.Message = connector.ReasonProviderTimeout, fmt.Sprintf("Twilio did not answer within the connector's %v timeout%s", c.timeout, unknown)
		return e
	}

	if notSent(err) {
		e.Reason, e.Message = connector.ReasonProviderUnavailable, "could not connect to Twilio; the message was not sent"
		return e
	}
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		e.Reason, e.Message = connector.ReasonProviderTimeout, "timed out waiting for Twilio"+unknown
		return e
	case errors.Is(err, context.Canceled):
		e.Reason, e.Message = connector.ReasonCancelled, "the request to Twilio was cancelled"+unknown
		return e
	}
	var uerr *url.Error
	if errors.As(err, &uerr) {
		var nerr net.Error
		if errors.As(err, &nerr) && nerr.Timeout() {
			e.Reason, e.Message = connector.ReasonProviderTimeout, "timed out waiting for Twilio"+unknown
			return e
		}
		e.Reason, e.Message = connector.ReasonProviderOutcomeUnknown, "the connection to Twilio failed after the request was sent"+unknown
		return e
	}

	// A plain error: twilio-go could not decode Twilio's error answer (an HTML error page from
	// a load balancer), or attempt could not decode a 2xx answer (a body that is not a message).
	status := rt.status()
	if status == 0 {
		status = statusInText(err.Error())
	}
	switch {
	case status == http.StatusTooManyRequests:
		e.Reason, e.Message = connector.ReasonProviderRateLimited, "Twilio is throttling the account (HTTP 429); the message was not created, retry after the delay"
		e.RetryAfter = retryAfter(rt.header("Retry-After"))
	case status >= 500:
		e.Reason, e.Message = connector.ReasonProviderOutcomeUnknown, fmt.Sprintf("Twilio failed with HTTP %d%s", status, unknown)
	case status >= 400:
		e.Reason, e.Message = connector.ReasonProviderRejected, fmt.Sprintf("Twilio refused the request with HTTP %d and no Twilio error code", status)
	case status > 0:
		e.Reason, e.Message = connector.ReasonProviderInvalidResponse, fmt.Sprintf("Twilio answered HTTP %d with a body that is not a message%s", status, unknown)
	default:
		e.Reason, e.Message = connector.ReasonProviderOutcomeUnknown, "the request to Twilio failed"+unknown
	}
	return e
}

// fromRestError fills e from a Twilio error document.
func fromRestError(e *connector.Error, rest *twclient.TwilioRestError, rt *attemptTransport) {
	if rest.Code != 0 {
		e.ProviderCode = strconv.Itoa(rest.Code)
	}
	if u, err := url.Parse(rest.MoreInfo); err == nil && (u.Scheme == "https" || u.Scheme == "http") && u.Host != "" {
		e.MoreInfo = rest.MoreInfo
	}
	status := rest.Status
	if status == 0 {
		status = rt.status()
	}
	if cr, ok := codeReasons[rest.Code]; ok {
		e.Reason, e.Message = cr.reason, cr.message
	} else {
		switch {
		case status == http.StatusTooManyRequests:
			e.Reason, e.Message = connector.ReasonProviderRateLimited, "Twilio is throttling the account (HTTP 429); the message was not created, retry after the delay"
		case status >= 500:
			e.Reason = connector.ReasonProviderOutcomeUnknown
			e.Message = fmt.Sprintf("Twilio failed with HTTP %d (error %d); the message may or may not have been created", status, rest.Code)
		default:
			e.Reason = connector.ReasonProviderRejected
			e.Message = fmt.Sprintf("Twilio refused the message with error %d (HTTP %d); see more_info", rest.Code, status)
		}
	}
	if e.Reason == connector.ReasonProviderRateLimited {
		e.RetryAfter = retryAfter(rt.header("Retry-After"))
	}
}

// notSent reports whether err proves the request never reached Twilio: the connection (or the
// proxy connection, or TLS verification) failed before anything was written.
func notSent(err error) bool {
	var op *net.OpError
	if errors.As(err, &op) && (op.Op == "dial" || op.Op == "proxyconnect") {
		return true
	}
	var dns *net.DNSError
	if errors.As(err, &dns) {
		return true
	}
	var cert *tls.CertificateVerificationError
	return errors.As(err, &cert)
}

// reStatus finds the HTTP status in twilio-go's decode error for a non-JSON error body:
// "error decoding the response for an HTTP error code: 502: ...".
var reStatus = regexp.MustCompile(`HTTP error code: (\d{3})`)

// statusInText returns the HTTP status named in twilio-go's error text, or 0.
func statusInText(s string) int {
	if m := reStatus.FindStringSubmatch(s); m != nil {
		n, _ := strconv.Atoi(m[1])
		return n
	}
	return 0
}

// retryAfter parses a Retry-After header (seconds or an HTTP date), defaulting to
// DefaultRetryAfter and capped at an hour.
func retryAfter(h string) time.Duration {
	h = strings.TrimSpace(h)
	if h == "" {
		return DefaultRetryAfter
	}
	var d time.Duration
	if secs, err := strconv.ParseInt(h, 10, 64); err == nil {
		if secs > int64(maxRetryAfter/time.Second) {
			return maxRetryAfter
		}
		d = time.Duration(secs) * time.Second
	} else if t, err := http.ParseTime(h); err == nil {
		d = time.Until(t).Round(time.Second)
	}
	switch {
	case d <= 0:
		return DefaultRetryAfter
	case d > maxRetryAfter:
		return maxRetryAfter
	}
	return d
}
