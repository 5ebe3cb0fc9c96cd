package twilio

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net/url"
	"strconv"

	twclient "github.com/twilio/twilio-go/client"

	"github.com/sms-connector/sms-connector/connector"
	"github.com/sms-connector/sms-connector/connector/httpvendor"
)

// DefaultRetryAfter is the RetryAfter of a PROVIDER_RATE_LIMITED error when Twilio's answer
// carries no usable Retry-After header, and of a PROVIDER_UNAVAILABLE one (Twilio could not be
// reached; nothing was sent).
const DefaultRetryAfter = httpvendor.DefaultRetryAfter

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

// classify turns the failure of an attempt into a *connector.Error. ctx is the call's context
// and actx the attempt's (ctx plus the attempt timeout); rt saw the HTTP exchange, if any; err
// says what was being done ("twilio: create message: ...").
//
// Twilio's error document (*client.TwilioRestError) wins, even over a context that expired just
// after it arrived: its code says what happened. Every other failure (a context that ended, a
// transport error, an answer that is not Twilio's JSON) is classified by httpvendor.
func classify(ctx, actx context.Context, rt *httpvendor.Transport, err error) *connector.Error {
	var rest *twclient.TwilioRestError
	if !errors.As(err, &rest) {
		return vendor.Failure(ctx, actx, rt, err)
	}
	retryAfter := rt.Header.Get("Retry-After")
	var e *connector.Error
	if cr, ok := codeReasons[rest.Code]; ok {
		e = &connector.Error{Reason: cr.reason, Message: cr.message, Provider: Provider, Err: err}
		if e.Reason == connector.ReasonProviderRateLimited {
			e.RetryAfter = cmp.Or(httpvendor.RetryAfter(retryAfter), DefaultRetryAfter)
		}
	} else {
		// A code the table does not know: its HTTP status decides.
		e = vendor.Answer(cmp.Or(rest.Status, rt.Status), retryAfter, err)
		e.Message += fmt.Sprintf(" (Twilio error %d; see more_info)", rest.Code)
	}
	if rest.Code != 0 {
		e.ProviderCode = strconv.Itoa(rest.Code)
	}
	if u, err := url.Parse(rest.MoreInfo); err == nil && (u.Scheme == "https" || u.Scheme == "http") && u.Host != "" {
		e.MoreInfo = rest.MoreInfo
	}
	return e
}
