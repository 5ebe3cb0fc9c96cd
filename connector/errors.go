package connector

import (
	"errors"
	"fmt"
	"time"
)

// Reason is the stable, machine-readable cause of a failure. Platforms switch on it; it crosses
// the wire as google.rpc.ErrorInfo.reason and mirrors the proto enum connector.sms.v1.ErrorReason
// (without its ERROR_REASON_ prefix).
type Reason string

// The reasons. Each names its gRPC code in server's mapping table and its Logto
// ConnectorErrorCodes twin in the proto. A connector returns the reasons of the vendor's
// answers (the Provider* and Recipient* ones, INVALID_SENDER, COUNTRY_NOT_PERMITTED) and those of
// its own checks; the SDK's layers (request validation, the guard, the limits, authentication,
// the idempotency store) return the rest.
const (
	// ReasonInvalidRequest means the request is malformed (a missing or unreadable field).
	ReasonInvalidRequest Reason = "INVALID_REQUEST"
	// ReasonInvalidPhoneNumber means the recipient is not a valid phone number; the vendor's "invalid
	// To" codes map here.
	ReasonInvalidPhoneNumber Reason = "INVALID_PHONE_NUMBER"
	// ReasonRecipientNotMobile means the recipient is a valid number that cannot receive SMS (a
	// landline).
	ReasonRecipientNotMobile Reason = "RECIPIENT_NOT_MOBILE"
	// ReasonInvalidConfig means the configuration has violations (see InvalidConfigError).
	ReasonInvalidConfig Reason = "INVALID_CONFIG"
	// ReasonConfigMissing means the request carries no configuration and the server has no default.
	ReasonConfigMissing Reason = "CONFIG_MISSING"
	// ReasonTemplateNotFound means no template serves the usage type (TemplateSet.Render).
	ReasonTemplateNotFound Reason = "TEMPLATE_NOT_FOUND"
	// ReasonMessageTooLong means the rendered body is over the vendor's length or the operator's
	// segment limit (TemplateSet.Render), or the vendor said so.
	ReasonMessageTooLong Reason = "MESSAGE_TOO_LONG"
	// ReasonInvalidSender means the vendor refuses the configured sender (number, sender id, service).
	ReasonInvalidSender Reason = "INVALID_SENDER"
	// ReasonProviderAuthFailed means the vendor rejects the configuration's credentials.
	ReasonProviderAuthFailed Reason = "PROVIDER_AUTH_FAILED"
	// ReasonProviderAccountNotFound means the vendor knows no such account.
	ReasonProviderAccountNotFound Reason = "PROVIDER_ACCOUNT_NOT_FOUND"
	// ReasonRecipientOptedOut means the recipient unsubscribed (replied STOP) from this sender.
	ReasonRecipientOptedOut Reason = "RECIPIENT_OPTED_OUT"
	// ReasonCountryNotPermitted means the recipient's country is not allowed, by the guard's policy or
	// by the vendor account's settings.
	ReasonCountryNotPermitted Reason = "COUNTRY_NOT_PERMITTED"
	// ReasonRecipientUnreachable means the vendor cannot reach the recipient from this sender.
	ReasonRecipientUnreachable Reason = "RECIPIENT_UNREACHABLE"
	// ReasonRateLimited means the guard refused the send (a per-number, per-IP or budget limit);
	// nothing was sent; it carries a RetryAfter.
	ReasonRateLimited Reason = "RATE_LIMITED"
	// ReasonProviderRateLimited means the vendor throttled the call without processing it (HTTP 429);
	// safe to retry after RetryAfter.
	ReasonProviderRateLimited Reason = "PROVIDER_RATE_LIMITED"
	// ReasonProviderQueueFull means the vendor's queue for this sender is full.
	ReasonProviderQueueFull Reason = "PROVIDER_QUEUE_FULL"
	// ReasonProviderRejected means the vendor refused the message for a reason no other reason names
	// (another 4xx).
	ReasonProviderRejected Reason = "PROVIDER_REJECTED"
	// ReasonProviderUnavailable means the vendor could not be reached and nothing was sent; safe to
	// retry after RetryAfter.
	ReasonProviderUnavailable Reason = "PROVIDER_UNAVAILABLE"
	// ReasonProviderOutcomeUnknown means the call failed after the request may have reached the vendor
	// (a 5xx, a lost connection): the message may exist, so no RetryAfter.
	ReasonProviderOutcomeUnknown Reason = "PROVIDER_OUTCOME_UNKNOWN"
	// ReasonProviderTimeout means a deadline passed while waiting for the vendor: the message may
	// exist, so no RetryAfter.
	ReasonProviderTimeout Reason = "PROVIDER_TIMEOUT"
	// ReasonProviderInvalidResponse means the vendor answered with something that is not a message (a
	// redirect, a body without an id): the message may exist.
	ReasonProviderInvalidResponse Reason = "PROVIDER_INVALID_RESPONSE"
	// ReasonCancelled means the caller cancelled the request.
	ReasonCancelled Reason = "CANCELLED"
	// ReasonInternal means a bug or an unexpected failure; also what an error that is not an *Error
	// becomes.
	ReasonInternal Reason = "INTERNAL"
	// ReasonUnauthenticated means the caller did not authenticate to the connector (SDK only).
	ReasonUnauthenticated Reason = "UNAUTHENTICATED"
	// ReasonOverloaded means the connector has too many sends in flight (SDK only); retry after
	// RetryAfter.
	ReasonOverloaded Reason = "OVERLOADED"
	// ReasonStoreUnavailable means the shared store (Redis) of the guard or idempotency could not be
	// reached (SDK only).
	ReasonStoreUnavailable Reason = "STORE_UNAVAILABLE"
	// ReasonNotSupported means the connector cannot do what was asked, such as telling a
	// message's delivery status; retrying does not help.
	ReasonNotSupported Reason = "NOT_SUPPORTED"
	// ReasonMessageNotFound means no message with the given id is known to the vendor.
	ReasonMessageNotFound Reason = "MESSAGE_NOT_FOUND"
)

// Error is the one error type connectors return. Its Message is safe to show an operator and
// never carries a secret; Err (the cause) is for logs and errors.Is/As only and is never sent
// to a caller.
type Error struct {
	// Reason classifies the failure.
	Reason Reason
	// Message explains it in one sentence an operator can act on.
	Message string
	// Provider names the vendor that produced the failure ("twilio"), if any.
	Provider string
	// ProviderCode is the vendor's own error code ("21211"), if any.
	ProviderCode string
	// MoreInfo is the vendor's documentation link for ProviderCode, if any.
	MoreInfo string
	// RetryAfter, when positive, says retrying after that delay is expected to help.
	RetryAfter time.Duration
	// Violations lists the offending fields of a request or configuration, if any.
	Violations []Violation
	// Err is the underlying cause.
	Err error
}

// Error returns the reason and message, then the cause.
func (e *Error) Error() string {
	s := string(e.Reason) + ": " + e.Message
	if e.ProviderCode != "" {
		s += " (" + e.Provider + " " + e.ProviderCode + ")"
	}
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return s
}

// Unwrap returns the cause.
func (e *Error) Unwrap() error { return e.Err }

// Is lets errors.Is(err, &Error{Reason: r}) match any *Error with reason r.
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	return ok && t.Reason == e.Reason && t.Message == "" && t.Err == nil
}

// Errorf returns an *Error with reason r and a formatted message.
func Errorf(r Reason, format string, args ...any) *Error {
	return &Error{Reason: r, Message: fmt.Sprintf(format, args...)}
}

// ReasonOf returns the Reason of the *Error in err's chain, or ReasonInternal when there is none.
func ReasonOf(err error) Reason {
	var e *Error
	if errors.As(err, &e) {
		return e.Reason
	}
	return ReasonInternal
}
