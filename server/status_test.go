package server

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/sms-connector/sms-connector/connector"
	smsv1 "github.com/sms-connector/sms-connector/gen/connector/sms/v1"
)

// wantCode is the mapping as the design states it, written out independently of codeOf: every
// connector.Reason constant, with its gRPC code. Adding a Reason means adding it here.
var wantCode = []struct {
	reason connector.Reason
	code   codes.Code
}{
	{connector.ReasonInvalidRequest, codes.InvalidArgument},
	{connector.ReasonInvalidPhoneNumber, codes.InvalidArgument},
	{connector.ReasonRecipientNotMobile, codes.InvalidArgument},
	{connector.ReasonInvalidConfig, codes.InvalidArgument},
	{connector.ReasonConfigMissing, codes.FailedPrecondition},
	{connector.ReasonTemplateNotFound, codes.FailedPrecondition},
	{connector.ReasonMessageTooLong, codes.FailedPrecondition},
	{connector.ReasonInvalidSender, codes.FailedPrecondition},
	{connector.ReasonProviderAuthFailed, codes.FailedPrecondition},
	{connector.ReasonProviderAccountNotFound, codes.FailedPrecondition},
	{connector.ReasonRecipientOptedOut, codes.FailedPrecondition},
	{connector.ReasonCountryNotPermitted, codes.FailedPrecondition},
	{connector.ReasonRecipientUnreachable, codes.FailedPrecondition},
	{connector.ReasonProviderRejected, codes.FailedPrecondition},
	{connector.ReasonRateLimited, codes.ResourceExhausted},
	{connector.ReasonProviderQueueFull, codes.ResourceExhausted},
	{connector.ReasonOverloaded, codes.ResourceExhausted},
	{connector.ReasonProviderRateLimited, codes.Unavailable},
	{connector.ReasonProviderUnavailable, codes.Unavailable},
	{connector.ReasonProviderOutcomeUnknown, codes.Unavailable},
	{connector.ReasonStoreUnavailable, codes.Unavailable},
	{connector.ReasonNotSupported, codes.Unimplemented},
	{connector.ReasonMessageNotFound, codes.NotFound},
	{connector.ReasonProviderTimeout, codes.DeadlineExceeded},
	{connector.ReasonCancelled, codes.Canceled},
	{connector.ReasonUnauthenticated, codes.Unauthenticated},
	{connector.ReasonProviderInvalidResponse, codes.Internal},
	{connector.ReasonInternal, codes.Internal},
}

// TestReasonTableMatchesProto fails when the proto ErrorReason enum, the connector.Reason list
// and the code Status gives each reason disagree in any direction. (The table itself is
// checked against the proto in package protoconv, where it lives.)
func TestReasonTableMatchesProto(t *testing.T) {
	const prefix = "ERROR_REASON_"
	inProto := map[connector.Reason]bool{}
	for n, name := range smsv1.ErrorReason_name {
		if n == int32(smsv1.ErrorReason_ERROR_REASON_UNSPECIFIED) {
			continue
		}
		inProto[connector.Reason(strings.TrimPrefix(name, prefix))] = true
	}
	inList := map[connector.Reason]bool{}
	for _, w := range wantCode {
		inList[w.reason] = true
		if !inProto[w.reason] {
			t.Errorf("connector reason %s is not in the proto enum ErrorReason", w.reason)
		}
		st := Status(&connector.Error{Reason: w.reason, Message: "m"})
		if st.Code() != w.code || detailsOf(t, st).info.Reason != string(w.reason) {
			t.Errorf("Status(%s) = %s %v, want %s with that reason", w.reason, st.Code(), st.Details(), w.code)
		}
	}
	for r := range inProto {
		if !inList[r] {
			t.Errorf("proto reason %s is missing from this test's list", r)
		}
	}
}

// details collects a status's AIP-193 details.
type details struct {
	info       *errdetails.ErrorInfo
	badRequest *errdetails.BadRequest
	retry      *errdetails.RetryInfo
}

func detailsOf(t *testing.T, st *status.Status) details {
	t.Helper()
	var d details
	for _, x := range st.Details() {
		switch v := x.(type) {
		case *errdetails.ErrorInfo:
			d.info = v
		case *errdetails.BadRequest:
			d.badRequest = v
		case *errdetails.RetryInfo:
			d.retry = v
		default:
			t.Errorf("unexpected detail %T: %v", x, x)
		}
	}
	if d.info == nil {
		t.Fatalf("status %v has no ErrorInfo", st)
	}
	if d.info.Domain != ErrorDomain {
		t.Errorf("domain = %q, want %q", d.info.Domain, ErrorDomain)
	}
	return d
}

func fields(br *errdetails.BadRequest) []string {
	var out []string
	for _, v := range br.GetFieldViolations() {
		out = append(out, v.GetField())
	}
	return out
}

func TestStatusEveryReason(t *testing.T) {
	for _, w := range wantCode {
		t.Run(string(w.reason), func(t *testing.T) {
			err := fmt.Errorf("wrapped: %w", &connector.Error{
				Reason: w.reason, Message: "operator-safe text",
				Provider: "twilio", ProviderCode: "21211",
				Err: errors.New("vendor said https://internal.example/secret-path"),
			})
			st := Status(err)
			if st.Code() != w.code {
				t.Errorf("code = %s, want %s", st.Code(), w.code)
			}
			if st.Message() != "operator-safe text" {
				t.Errorf("message = %q", st.Message())
			}
			d := detailsOf(t, st)
			if d.info.Reason != string(w.reason) {
				t.Errorf("reason = %q", d.info.Reason)
			}
			want := map[string]string{"provider": "twilio", "provider_code": "21211"}
			if fmt.Sprint(d.info.Metadata) != fmt.Sprint(want) {
				t.Errorf("metadata = %v, want %v (only non-empty values)", d.info.Metadata, want)
			}
			if d.badRequest != nil || d.retry != nil {
				t.Errorf("unexpected BadRequest/RetryInfo: %v %v", d.badRequest, d.retry)
			}
		})
	}
}

func TestStatusDetails(t *testing.T) {
	st := Status(&connector.Error{
		Reason: connector.ReasonProviderRateLimited, Message: "Twilio is throttling the account",
		Provider: "twilio", ProviderCode: "20429", MoreInfo: "https://www.twilio.com/docs/errors/20429",
		RetryAfter: 1500 * time.Millisecond,
		Violations: []connector.Violation{{Field: "to", Description: "bad"}, {Field: "payload.code", Description: "worse"}},
	})
	d := detailsOf(t, st)
	if d.info.Metadata["more_info"] != "https://www.twilio.com/docs/errors/20429" || len(d.info.Metadata) != 3 {
		t.Errorf("metadata = %v", d.info.Metadata)
	}
	if got := d.retry.GetRetryDelay().AsDuration(); got != 1500*time.Millisecond {
		t.Errorf("retry delay = %v", got)
	}
	if got := strings.Join(fields(d.badRequest), ","); got != "to,payload.code" {
		t.Errorf("BadRequest fields = %s", got)
	}
	if d.badRequest.GetFieldViolations()[1].GetDescription() != "worse" {
		t.Errorf("description lost: %v", d.badRequest)
	}
}

func TestStatusOtherErrors(t *testing.T) {
	tests := []struct {
		name   string
		err    error
		code   codes.Code
		reason connector.Reason
	}{
		{"untyped", errors.New("dial tcp 10.0.0.1:443: secret detail"), codes.Internal, connector.ReasonInternal},
		{"deadline", context.DeadlineExceeded, codes.DeadlineExceeded, connector.ReasonProviderTimeout},
		{"wrapped deadline", fmt.Errorf("post: %w", context.DeadlineExceeded), codes.DeadlineExceeded, connector.ReasonProviderTimeout},
		{"canceled", context.Canceled, codes.Canceled, connector.ReasonCancelled},
		{"unknown reason", &connector.Error{Reason: "NEW_THING", Message: "m"}, codes.Internal, connector.ReasonInternal},
		{"connector error wins over its ctx cause", &connector.Error{Reason: connector.ReasonProviderOutcomeUnknown, Message: "m", Err: context.DeadlineExceeded}, codes.Unavailable, connector.ReasonProviderOutcomeUnknown},
		{"grpc status from elsewhere", status.Error(codes.NotFound, "upstream detail"), codes.Internal, connector.ReasonInternal},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st := Status(tt.err)
			if st.Code() != tt.code {
				t.Errorf("code = %s, want %s", st.Code(), tt.code)
			}
			if d := detailsOf(t, st); d.info.Reason != string(tt.reason) {
				t.Errorf("reason = %s, want %s", d.info.Reason, tt.reason)
			}
			if strings.Contains(st.Message(), "detail") {
				t.Errorf("message leaks the cause: %q", st.Message())
			}
		})
	}
	if Status(nil).Code() != codes.OK {
		t.Error("Status(nil) is not OK")
	}
	if st := Status(&connector.Error{Reason: connector.ReasonRateLimited}); st.Message() == "" {
		t.Error("empty Message gives an empty status message")
	}
}
