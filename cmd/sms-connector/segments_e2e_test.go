package main

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/sms-connector/sms-connector/connector/twilio/twiliotest"
	smsv1 "github.com/sms-connector/sms-connector/gen/connector/sms/v1"
	"github.com/sms-connector/sms-connector/internal/testutil"
)

// TestBinaryMaxSegments: --max-segments reaches the connector the binary serves, Twilio and
// console alike, and a body over it is refused with FAILED_PRECONDITION MESSAGE_TOO_LONG over
// real gRPC, before any vendor call.
func TestBinaryMaxSegments(t *testing.T) {
	consoleConfig := func(content string) map[string]any {
		return map[string]any{"templates": []any{map[string]any{"usageType": "Generic", "content": content}}}
	}
	twilioConfig := func(content string) map[string]any {
		return map[string]any{
			"accountSID": twiliotest.SandboxAccountSID, "authToken": twiliotest.SandboxAuthToken, "from": twiliotest.FromValid,
			"templates": []any{map[string]any{"usageType": "Generic", "content": content}},
		}
	}
	gsm := func(n int) string { return strings.Repeat("x", n-6) + "{{code}}" } // n GSM-7 characters once rendered
	tests := []struct {
		name    string
		args    []string
		config  map[string]any
		refused bool
	}{
		{"console, 2 segments over --max-segments 1", []string{"--connector", "console", "--max-segments", "1"}, consoleConfig(gsm(161)), true},
		{"console, 2 segments, --max-segments 0 (no limit)", []string{"--connector", "console", "--max-segments", "0"}, consoleConfig(gsm(161)), false},
		{"twilio sandbox, 11 segments over the default 10", []string{"--sandbox"}, twilioConfig(gsm(1531)), true},
		{"twilio sandbox, 10 segments", []string{"--sandbox"}, twilioConfig(gsm(1530)), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := startBinary(t, append(tt.args, "--listen", "127.0.0.1:0")...)
			cfg, err := json.Marshal(tt.config)
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			_, err = smsv1.NewSmsConnectorClient(testutil.Dial(t, p.Addr)).SendMessage(ctx, &smsv1.SendMessageRequest{
				To: "+15005550006", UsageType: smsv1.UsageType_USAGE_TYPE_SIGN_IN,
				Payload: &smsv1.Payload{Code: "123456"}, ConfigJson: string(cfg),
			})
			if !tt.refused {
				if err != nil {
					t.Fatalf("SendMessage: %v", err)
				}
				return
			}
			st := status.Convert(err)
			var reason string
			for _, d := range st.Details() {
				if info, ok := d.(*errdetails.ErrorInfo); ok {
					reason = info.Reason
				}
			}
			if st.Code() != codes.FailedPrecondition || reason != "MESSAGE_TOO_LONG" || !strings.Contains(st.Message(), "segments") {
				t.Fatalf("SendMessage: %v (reason %q), want FAILED_PRECONDITION MESSAGE_TOO_LONG naming the segments", err, reason)
			}
		})
	}
}
