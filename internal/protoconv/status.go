package protoconv

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/protoadapt"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/sms-connector/sms-connector/connector"
)

// ErrorDomain is google.rpc.ErrorInfo.domain of every error an SmsConnector server returns:
// together with the reason it identifies the error for clients in any language (AIP-193).
const ErrorDomain = "sms-connector.dev"

// ErrorInfo metadata keys, as documented in the proto. Only non-empty values are sent.
const (
	MetaProvider     = "provider"
	MetaProviderCode = "provider_code"
	MetaMoreInfo     = "more_info"
)

// codeOf is THE mapping from a connector.Reason to its gRPC code, in one place. Every reason of
// the proto enum connector.sms.v1.ErrorReason has exactly one entry (status_test.go proves it).
// The grouping follows who must act: the caller (InvalidArgument), the operator or the
// recipient's state (FailedPrecondition), load (ResourceExhausted, Unavailable: see RetryInfo),
// time (DeadlineExceeded), the caller's own cancellation (Canceled), the caller's credentials
// (Unauthenticated), a bug (Internal).
var codeOf = map[connector.Reason]codes.Code{
	connector.ReasonInvalidRequest:     codes.InvalidArgument,
	connector.ReasonInvalidPhoneNumber: codes.InvalidArgument,
	connector.ReasonRecipientNotMobile: codes.InvalidArgument,
	connector.ReasonInvalidConfig:      codes.InvalidArgument,

	connector.ReasonConfigMissing:           codes.FailedPrecondition,
	connector.ReasonTemplateNotFound:        codes.FailedPrecondition,
	connector.ReasonMessageTooLong:          codes.FailedPrecondition,
	connector.ReasonInvalidSender:           codes.FailedPrecondition,
	connector.ReasonProviderAuthFailed:      codes.FailedPrecondition,
	connector.ReasonProviderAccountNotFound: codes.FailedPrecondition,
	connector.ReasonRecipientOptedOut:       codes.FailedPrecondition,
	connector.ReasonCountryNotPermitted:     codes.FailedPrecondition,
	connector.ReasonRecipientUnreachable:    codes.FailedPrecondition,
	connector.ReasonProviderRejected:        codes.FailedPrecondition,

	connector.ReasonRateLimited:       codes.ResourceExhausted,
	connector.ReasonProviderQueueFull: codes.ResourceExhausted,
	connector.ReasonOverloaded:        codes.ResourceExhausted,

	connector.ReasonProviderRateLimited:    codes.Unavailable,
	connector.ReasonProviderUnavailable:    codes.Unavailable,
	connector.ReasonProviderOutcomeUnknown: codes.Unavailable,
	connector.ReasonStoreUnavailable:       codes.Unavailable,
	connector.ReasonNotSupported:           codes.Unimplemented,
	connector.ReasonMessageNotFound:        codes.NotFound,

	connector.ReasonProviderTimeout: codes.DeadlineExceeded,

	connector.ReasonCancelled: codes.Canceled,

	connector.ReasonUnauthenticated: codes.Unauthenticated,

	connector.ReasonProviderInvalidResponse: codes.Internal,
	connector.ReasonInternal:                codes.Internal,
}

// Messages of the errors Status makes up itself. They say nothing about the cause on purpose:
// the cause may hold vendor detail, and the server logs it instead.
const (
	// MsgInternal is the status message of an error that is not a *connector.Error.
	MsgInternal = "internal error in the connector"
	msgDeadline = "the deadline passed before the connector finished"
	msgCanceled = "the request was cancelled"
)

// Bounds of what Status echoes, so that every error's trailers (the status message, and the
// whole status again in grpc-status-details-bin, base64) stay well under the 8 KiB of
// metadata that gRPC's C core, grpc-java and grpc-js accept by default, whatever the input:
// a client whose limit is exceeded sees the stream reset (INTERNAL) and no ErrorInfo at all.
// With these bounds the trailers of any error take at most about 6 KiB.
const (
	// MaxStatusMessageBytes bounds the status message, in bytes of UTF-8.
	MaxStatusMessageBytes = 512
	// MaxStatusViolations bounds how many violations a BadRequest lists; the status message
	// says how many more there are. ValidateConfig, which answers in its response body, lists
	// every problem.
	MaxStatusViolations = 10
	// MaxViolationFieldBytes bounds a BadRequest field path, in bytes.
	MaxViolationFieldBytes = 80
	// MaxViolationDescriptionBytes bounds a BadRequest description, in bytes.
	MaxViolationDescriptionBytes = 128
	// MaxMetadataValueBytes bounds each ErrorInfo metadata value, in bytes.
	MaxMetadataValueBytes = 128
)

// ellipsis marks a cut string.
const ellipsis = "…"

// Status turns any error into the gRPC status a client receives (AIP-193): the code from the
// reason table, the connector.Error's Message as the status message (never the text of its
// cause), and details ErrorInfo{reason, domain, metadata provider/provider_code/more_info},
// BadRequest when the error lists violations, RetryInfo when it has a RetryAfter.
//
// What it echoes is bounded (see MaxStatusMessageBytes and the others): a longer message,
// field path, description or metadata value is cut on a UTF-8 boundary and ends with "…", and
// a BadRequest lists the first MaxStatusViolations violations, the message then ending with
// "(... and N more; ValidateConfig lists every problem)".
//
// An error without a *connector.Error in its chain becomes INTERNAL (reason INTERNAL) with a
// generic message, except the context's own errors: context.DeadlineExceeded becomes
// DEADLINE_EXCEEDED (reason PROVIDER_TIMEOUT) and context.Canceled CANCELLED (reason
// CANCELLED). A reason missing from the table is treated as INTERNAL. The result is never
// codes.Unknown. Status(nil) is the OK status.
func Status(err error) *status.Status {
	if err == nil {
		return status.New(codes.OK, "")
	}
	var ce *connector.Error
	switch {
	case errors.As(err, &ce):
	case errors.Is(err, context.DeadlineExceeded):
		ce = &connector.Error{Reason: connector.ReasonProviderTimeout, Message: msgDeadline}
	case errors.Is(err, context.Canceled):
		ce = &connector.Error{Reason: connector.ReasonCancelled, Message: msgCanceled}
	default:
		ce = &connector.Error{Reason: connector.ReasonInternal, Message: MsgInternal}
	}
	reason := ce.Reason
	code, ok := codeOf[reason]
	if !ok {
		reason, code = connector.ReasonInternal, codes.Internal
	}
	msg := ce.Message
	if msg == "" {
		msg = strings.ToLower(strings.ReplaceAll(string(reason), "_", " "))
	}
	listed := ce.Violations
	if len(listed) > MaxStatusViolations {
		listed = listed[:MaxStatusViolations]
		more := fmt.Sprintf(" (... and %d more; ValidateConfig lists every problem)", len(ce.Violations)-len(listed))
		msg = truncateUTF8(msg, MaxStatusMessageBytes-len(more)) + more
	} else {
		msg = truncateUTF8(msg, MaxStatusMessageBytes)
	}

	info := &errdetails.ErrorInfo{Reason: string(reason), Domain: ErrorDomain}
	for k, v := range map[string]string{MetaProvider: ce.Provider, MetaProviderCode: ce.ProviderCode, MetaMoreInfo: ce.MoreInfo} {
		if v != "" {
			if info.Metadata == nil {
				info.Metadata = make(map[string]string, 3)
			}
			info.Metadata[k] = truncateUTF8(v, MaxMetadataValueBytes)
		}
	}
	details := []protoadapt.MessageV1{info}
	if len(listed) > 0 {
		br := &errdetails.BadRequest{}
		for _, v := range listed {
			br.FieldViolations = append(br.FieldViolations, &errdetails.BadRequest_FieldViolation{
				Field:       truncateUTF8(v.Field, MaxViolationFieldBytes),
				Description: truncateUTF8(v.Description, MaxViolationDescriptionBytes),
			})
		}
		details = append(details, br)
	}
	if ce.RetryAfter > 0 {
		details = append(details, &errdetails.RetryInfo{RetryDelay: durationpb.New(ce.RetryAfter)})
	}

	st := status.New(code, msg)
	if withDetails, err := st.WithDetails(details...); err == nil {
		return withDetails
	}
	return st // the details are plain messages and always marshal; keep code and message anyway
}

// truncateUTF8 returns s if it has at most n bytes, else its longest prefix that ends on a
// character boundary and, with an ellipsis appended, has at most n bytes.
func truncateUTF8(s string, n int) string {
	if len(s) <= n {
		return s
	}
	cut := max(n-len(ellipsis), 0)
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + ellipsis
}

// ErrorFromStatus is the reverse of Status: it turns the error of a call to an SmsConnector
// server back into the *connector.Error the server's connector returned, so that errors.As and
// connector.ReasonOf work on the caller's side as they do on the server's. The reason and the
// provider, provider_code and more_info metadata come from ErrorInfo, Violations from
// BadRequest (with the server's field paths, see UnprefixConfigViolations), RetryAfter from
// RetryInfo, Message from the status message. Err is the status itself (Error says
// "gRPC status <code>"; status.Code and status.FromError see through it); the connector's own
// cause never crosses the wire.
//
// A status without this contract's ErrorInfo did not come from a connector (the connection
// failed, the process is gone, a proxy answered): it becomes CANCELLED for codes.Canceled,
// PROVIDER_TIMEOUT for codes.DeadlineExceeded (the send may have happened, as when the server
// times out), UNAUTHENTICATED for codes.Unauthenticated (a proxy or gateway refused the
// caller), NOT_SUPPORTED for codes.Unimplemented (a server of an older contract that lacks the
// RPC), and INTERNAL otherwise, with the status message. ErrorFromStatus(nil) is nil.
func ErrorFromStatus(err error) *connector.Error {
	if err == nil {
		return nil
	}
	st, ok := status.FromError(err)
	if !ok {
		return &connector.Error{Reason: connector.ReasonInternal, Message: "the call failed: " + err.Error(), Err: err}
	}
	ce := &connector.Error{Message: st.Message(), Err: &remoteError{st: st}}
	var info *errdetails.ErrorInfo
	for _, d := range st.Details() {
		switch d := d.(type) {
		case *errdetails.ErrorInfo:
			if d.GetDomain() == ErrorDomain {
				info = d
			}
		case *errdetails.BadRequest:
			for _, v := range d.GetFieldViolations() {
				ce.Violations = append(ce.Violations, connector.Violation{Field: v.GetField(), Description: v.GetDescription()})
			}
		case *errdetails.RetryInfo:
			ce.RetryAfter = d.GetRetryDelay().AsDuration()
		}
	}
	if info == nil {
		switch st.Code() {
		case codes.Canceled:
			ce.Reason = connector.ReasonCancelled
		case codes.DeadlineExceeded:
			ce.Reason = connector.ReasonProviderTimeout
		case codes.Unauthenticated:
			ce.Reason = connector.ReasonUnauthenticated
		case codes.Unimplemented:
			ce.Reason = connector.ReasonNotSupported
		default:
			ce.Reason = connector.ReasonInternal
		}
		return ce
	}
	ce.Reason = connector.Reason(info.GetReason())
	ce.Provider = info.GetMetadata()[MetaProvider]
	ce.ProviderCode = info.GetMetadata()[MetaProviderCode]
	ce.MoreInfo = info.GetMetadata()[MetaMoreInfo]
	return ce
}

// remoteError is the cause of an error that came back over gRPC: the status, without
// repeating its message (the connector.Error carries it).
type remoteError struct{ st *status.Status }

// Error names the status code.
func (e *remoteError) Error() string { return "gRPC status " + e.st.Code().String() }

// GRPCStatus lets status.FromError and status.Code find the status in an error chain.
func (e *remoteError) GRPCStatus() *status.Status { return e.st }

// ErrorInfoOf returns the ErrorInfo of a status error, or nil when it has none.
func ErrorInfoOf(err error) *errdetails.ErrorInfo {
	for _, d := range status.Convert(err).Details() {
		if ei, ok := d.(*errdetails.ErrorInfo); ok {
			return ei
		}
	}
	return nil
}
