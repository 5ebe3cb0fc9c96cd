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
// ConnectorErrorCodes twin in the proto.
const (
	ReasonInvalidRequest          Reason = "INVALID_REQUEST"
	ReasonInvalidPhoneNumber      Reason = "INVALID_PHONE_NUMBER"
	ReasonRecipientNotMobile      Reason = "RECIPIENT_NOT_MOBILE"
	ReasonInvalidConfig           Reason = "INVALID_CONFIG"
	ReasonConfigMissing           Reason = "CONFIG_MISSING"
	ReasonTemplateNotFound        Reason = "TEMPLATE_NOT_FOUND"
	ReasonMessageTooLong          Reason = "MESSAGE_TOO_LONG"
	ReasonInvalidSender           Reason = "INVALID_SENDER"
	ReasonProviderAuthFailed      Reason = "PROVIDER_AUTH_FAILED"
	ReasonProviderAccountNotFound Reason = "PROVIDER_ACCOUNT_NOT_FOUND"
	ReasonRecipientOptedOut       Reason = "RECIPIENT_OPTED_OUT"
	ReasonCountryNotPermitted     Reason = "COUNTRY_NOT_PERMITTED"
	ReasonRecipientUnreachable    Reason = "RECIPIENT_UNREACHABLE"
	ReasonRateLimited             Reason = "RATE_LIMITED"
	ReasonProviderRateLimited     Reason = "PROVIDER_RATE_LIMITED"
	ReasonProviderQueueFull       Reason = "PROVIDER_QUEUE_FULL"
	ReasonProviderRejected        Reason = "PROVIDER_REJECTED"
	ReasonProviderUnavailable     Reason = "PROVIDER_UNAVAILABLE"
	ReasonProviderOutcomeUnknown  Reason = "PROVIDER_OUTCOME_UNKNOWN"
	ReasonProviderTimeout         Reason = "PROVIDER_TIMEOUT"
	ReasonProviderInvalidResponse Reason = "PROVIDER_INVALID_RESPONSE"
	ReasonCancelled               Reason = "CANCELLED"
	ReasonInternal                Reason = "INTERNAL"
	ReasonUnauthenticated         Reason = "UNAUTHENTICATED"
	ReasonOverloaded              Reason = "OVERLOADED"
	ReasonStoreUnavailable        Reason = "STORE_UNAVAILABLE"
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
