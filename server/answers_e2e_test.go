package server_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap/zaptest/observer"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/sms-connector/sms-connector/connector/twilio"
	"github.com/sms-connector/sms-connector/connector/twilio/twiliotest"
	smsv1 "github.com/sms-connector/sms-connector/gen/connector/sms/v1"
)

// finishedSends waits until logs hold n "finished call" lines of SendMessage and returns them.
func finishedSends(t *testing.T, logs *observer.ObservedLogs, n int) []observer.LoggedEntry {
	t.Helper()
	guard := time.After(30 * time.Second) // against a hang, not a timing check
	for {
		var sends []observer.LoggedEntry
		for _, e := range logs.FilterMessage("finished call").AllUntimed() {
			if e.ContextMap()["grpc.method"] == "SendMessage" {
				sends = append(sends, e)
			}
		}
		if len(sends) >= n {
			return sends
		}
		select {
		case <-guard:
			t.Fatalf("%d finished SendMessage lines, want %d", len(sends), n)
		case <-time.After(5 * time.Millisecond):
		}
	}
}

// TestLogRecordsWhatTheCallerSaw: a caller whose deadline passes while Twilio's request is in
// flight sees DEADLINE_EXCEEDED, and the server logs DEADLINE_EXCEEDED (reason
// PROVIDER_TIMEOUT) every time, though the client's stream reset and the server's own timer
// race; a caller that cancels long before its deadline is logged CANCELLED.
func TestLogRecordsWhatTheCallerSaw(t *testing.T) {
	s := newStack(t)
	s.emu.SetLatency(time.Minute) // Twilio never answers in time; the emulator ends with the request
	const runs = 20
	for i := range runs {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Millisecond)
		_, err := s.client.SendMessage(ctx, request(t, "+14155550123"))
		cancel()
		if status.Code(err) != codes.DeadlineExceeded {
			t.Fatalf("run %d: %v, want DEADLINE_EXCEEDED", i, err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Hour)
	before := s.emu.Requests()
	go func() {
		for s.emu.Requests() == before {
			time.Sleep(time.Millisecond)
		}
		cancel()
	}()
	_, err := s.client.SendMessage(ctx, request(t, "+14155550123"))
	if status.Code(err) != codes.Canceled {
		t.Fatalf("cancelled send: %v, want CANCELLED", err)
	}

	seen := map[[2]any]int{}
	for _, e := range finishedSends(t, s.logs, runs+1) {
		f := e.ContextMap()
		seen[[2]any{f["grpc.code"], f["error.reason"]}]++
	}
	want := map[[2]any]int{{"DeadlineExceeded", "PROVIDER_TIMEOUT"}: runs, {"Canceled", "CANCELLED"}: 1}
	if len(seen) != len(want) || seen[[2]any{"DeadlineExceeded", "PROVIDER_TIMEOUT"}] != runs || seen[[2]any{"Canceled", "CANCELLED"}] != 1 {
		t.Errorf("logged (grpc.code, error.reason) counts %v, want %v: what each caller saw", seen, want)
	}
}

// TestConfigJSONNotUTF8Anywhere: config_json text with a byte that is not UTF-8 gets one
// answer wherever the byte is (in a key, in a string value, between tokens, after the
// object), in SendMessage and in ValidateConfig: INVALID_ARGUMENT, INVALID_REQUEST, field
// config_json. The escape "\xff" written as four characters is valid UTF-8 and invalid JSON:
// INVALID_CONFIG, as any other JSON that does not parse.
func TestConfigJSONNotUTF8Anywhere(t *testing.T) {
	s := newHardStack(t, binaryDefences(), twilio.Options{})
	good := configJSON(t)
	for name, text := range map[string]string{
		"in a string value":    strings.Replace(good, twiliotest.FromValid, "+1500\xff5550006", 1),
		"in a key":             strings.Replace(good, `"from"`, "\"fr\xffom\"", 1),
		"between tokens":       strings.Replace(good, `"from":`, "\"from\":\xff", 1),
		"after the object":     good + "\xff",
		"an encoded surrogate": strings.Replace(good, twiliotest.FromValid, "+1500\xed\xa0\x805550006", 1),
	} {
		t.Run(name, func(t *testing.T) {
			r := req(nil)(t, "+14155550177")
			r.Config = nil
			_, err := sendRaw(context.Background(), s.conn, appendString(wire(t, r), fieldConfigJSON, text))
			if st := status.Convert(err); st.Code() != codes.InvalidArgument || reasonOf(err) != "INVALID_REQUEST" || !hasField(st, "config_json") {
				t.Errorf("SendMessage: %v, want INVALID_ARGUMENT INVALID_REQUEST naming config_json", err)
			}
			resp := &smsv1.ValidateConfigResponse{}
			err = s.conn.Invoke(context.Background(), smsv1.SmsConnector_ValidateConfig_FullMethodName,
				rawBytes(appendString(nil, 2, text)), resp, grpc.ForceCodecV2(rawCodec{}))
			if st := status.Convert(err); st.Code() != codes.InvalidArgument || reasonOf(err) != "INVALID_REQUEST" || !hasField(st, "config_json") {
				t.Errorf("ValidateConfig: %v, want INVALID_ARGUMENT INVALID_REQUEST naming config_json", err)
			}
		})
	}
	if n := s.emu.Requests(); n != 0 {
		t.Errorf("%d requests reached the emulator", n)
	}

	r := req(nil)(t, "+14155550177")
	r.Config, r.ConfigJson = nil, `{"from": "+1500\xff5550006"}`
	if _, err := s.client.SendMessage(context.Background(), r); reasonOf(err) != "INVALID_CONFIG" {
		t.Errorf(`the escape \xff as text: %v, want INVALID_CONFIG (not JSON)`, err)
	}
}

// reasonOf returns the ErrorInfo reason of err, or "".
func reasonOf(err error) string {
	info, _ := details(status.Convert(err))
	return info.GetReason()
}

// TestRecipientWithoutPlus: as the proto documents, a recipient written without "+" (and
// with spaces, dashes, dots or parentheses) gets the "+" added and is sent in E.164; the
// response and the message Twilio received both carry the normalised number.
func TestRecipientWithoutPlus(t *testing.T) {
	s := newStack(t)
	for _, to := range []string{"14155550123", "1 (415) 555-0123", "1.415.555.0123"} {
		resp, err := s.client.SendMessage(context.Background(), request(t, to))
		if err != nil {
			t.Fatalf("%q: %v", to, err)
		}
		msgs := s.emu.Messages()
		if resp.GetTo() != "+14155550123" || msgs[len(msgs)-1].To != "+14155550123" {
			t.Errorf("%q: response to %q, Twilio got %q; want +14155550123", to, resp.GetTo(), msgs[len(msgs)-1].To)
		}
	}
}
