package server_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	"github.com/sms-connector/sms-connector/connector/twilio"
	smsv1 "github.com/sms-connector/sms-connector/gen/connector/sms/v1"
	"github.com/sms-connector/sms-connector/server"
)

// polyglotHeaderListSize is the most response metadata gRPC's C core (Python, Ruby, PHP, C#),
// grpc-java and grpc-js accept by default. A server whose trailers exceed what the client
// advertises resets the stream, and the caller sees INTERNAL without any ErrorInfo.
const polyglotHeaderListSize = 8 << 10

// templatesWithoutCode is a config's template list of every usage type in six locales (54
// templates), none of which carries {{code}}. With no template without a locale, ValidateConfig
// also reports each of the 9 usage types as having none to fall back to: 63 problems in all.
func templatesWithoutCode() []any {
	var list []any
	for _, u := range usageNames {
		for _, loc := range []string{"en", "fr", "de", "es", "ja", "pt-BR"} {
			list = append(list, map[string]any{"usageType": u.logto, "locale": loc, "content": "Welcome to Acme, your account is ready (" + loc + ")"})
		}
	}
	return list
}

// TestErrorTrailersFitPolyglotClients sends the largest error-producing inputs to the
// binary's stack through a client that accepts 8 KiB of metadata, as non-Go gRPC stacks do by
// default, and requires each answer's code, ErrorInfo and (for config problems) a BadRequest:
// 54 templates without {{code}}, an unknown key of 5,000 characters, and every row of the
// bad-input matrix.
func TestErrorTrailersFitPolyglotClients(t *testing.T) {
	s := newHardStack(t, binaryDefences(), twilio.Options{})
	cc, err := grpc.NewClient(s.conn.Target(), grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithMaxHeaderListSize(polyglotHeaderListSize))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cc.Close() })
	client := smsv1.NewSmsConnectorClient(cc)

	longKey := strings.Repeat("k", 5000)
	rows := []badInput{
		{name: "54 templates without {{code}}", req: withConfig(func(m map[string]any) { m["templates"] = templatesWithoutCode() }),
			code: codes.InvalidArgument, reason: "INVALID_CONFIG", field: "config.templates[0].content"},
		{name: "54 templates without {{code}} as config_json", req: req(func(r *smsv1.SendMessageRequest, t *testing.T) {
			r.Config, r.ConfigJson = nil, configJSON(t, func(m map[string]any) { m["templates"] = templatesWithoutCode() })
		}), code: codes.InvalidArgument, reason: "INVALID_CONFIG", field: "config_json.templates[0].content"},
		{name: "an unknown key of 5,000 characters", req: withConfig(func(m map[string]any) { m[longKey] = "x" }),
			code: codes.InvalidArgument, reason: "INVALID_CONFIG"},
		{name: "an unknown key of 5,000 non-ASCII characters", req: withConfig(func(m map[string]any) { m[strings.Repeat("ж", 5000)] = "x" }),
			code: codes.InvalidArgument, reason: "INVALID_CONFIG"},
	}
	for _, row := range badInputs() {
		if row.code != codes.OK && row.reason != "" {
			row.name = "matrix: " + row.name
			rows = append(rows, row)
		}
	}
	for i, row := range rows {
		t.Run(row.name, func(t *testing.T) {
			to := fmt.Sprintf("+1415666%04d", i)
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			if row.raw != nil {
				_, err = sendRaw(ctx, cc, row.raw(t, to))
			} else {
				_, err = client.SendMessage(ctx, row.req(t, to))
			}
			st := status.Convert(err)
			if st.Code() != row.code {
				t.Fatalf("code %s (%.200q), want %s", st.Code(), st.Message(), row.code)
			}
			info, _ := details(st)
			if info == nil || info.GetReason() != row.reason || info.GetDomain() != server.ErrorDomain {
				t.Fatalf("ErrorInfo %v, want reason %s", info, row.reason)
			}
			if row.field != "" && !hasField(st, row.field) {
				t.Errorf("BadRequest lacks the field %q: %v", row.field, st.Details())
			}
			if row.reason == "INVALID_CONFIG" && badRequest(st) == nil {
				t.Errorf("INVALID_CONFIG without a BadRequest")
			}
		})
	}

	// The 54 problems: the first ones in BadRequest, the count of the others in the message,
	// and every one of them in ValidateConfig's answer.
	cfg := config(t, func(m map[string]any) { m["templates"] = templatesWithoutCode() })
	_, err = client.SendMessage(context.Background(), &smsv1.SendMessageRequest{
		To: "+14156660999", UsageType: smsv1.UsageType_USAGE_TYPE_SIGN_IN, Payload: &smsv1.Payload{Code: "424242"}, Config: cfg})
	st := status.Convert(err)
	br := badRequest(st)
	const problems = 54 + 9 // see templatesWithoutCode
	if br == nil || len(br.GetFieldViolations()) == 0 || len(br.GetFieldViolations()) >= problems {
		t.Fatalf("BadRequest %v: want the first of the %d problems", br, problems)
	}
	more := problems - len(br.GetFieldViolations())
	if want := fmt.Sprintf("and %d more; ValidateConfig lists every problem", more); !strings.Contains(st.Message(), want) {
		t.Errorf("message %q does not say %q", st.Message(), want)
	}
	vr, err := client.ValidateConfig(context.Background(), &smsv1.ValidateConfigRequest{Config: cfg})
	if err != nil {
		t.Fatal(err)
	}
	if n := len(vr.GetViolations()); n != problems {
		t.Errorf("ValidateConfig lists %d problems, want %d", n, problems)
	}
}

// badRequest returns st's BadRequest, or nil.
func badRequest(st *status.Status) *errdetails.BadRequest {
	for _, d := range st.Details() {
		if br, ok := d.(*errdetails.BadRequest); ok {
			return br
		}
	}
	return nil
}
