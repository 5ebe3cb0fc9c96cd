package protoconv

import (
	"encoding/base64"
	"fmt"
	"strings"
	"testing"
	"unicode/utf8"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/proto"

	"github.com/sms-connector/sms-connector/connector"
)

// TestStatusInvalidConfigCarriesBadRequest: an INVALID_CONFIG error is INVALID_ARGUMENT with
// ErrorInfo INVALID_CONFIG and a BadRequest naming every problem's field and description.
func TestStatusInvalidConfigCarriesBadRequest(t *testing.T) {
	vs := []connector.Violation{
		{Field: "config.accountSID", Description: "is required"},
		{Field: "config.templates[0].content", Description: "does not contain {{code}}"},
	}
	st := Status(fmt.Errorf("send: %w", &connector.Error{Reason: connector.ReasonInvalidConfig, Message: "invalid config", Violations: vs}))
	if st.Code() != codes.InvalidArgument {
		t.Errorf("code %s, want InvalidArgument", st.Code())
	}
	var info *errdetails.ErrorInfo
	var br *errdetails.BadRequest
	for _, d := range st.Details() {
		switch d := d.(type) {
		case *errdetails.ErrorInfo:
			info = d
		case *errdetails.BadRequest:
			br = d
		}
	}
	if info.GetReason() != "INVALID_CONFIG" || info.GetDomain() != ErrorDomain {
		t.Errorf("ErrorInfo %v, want reason INVALID_CONFIG in %s", info, ErrorDomain)
	}
	if br == nil || len(br.GetFieldViolations()) != len(vs) {
		t.Fatalf("BadRequest %v, want %d violations", br, len(vs))
	}
	for i, v := range br.GetFieldViolations() {
		if v.GetField() != vs[i].Field || v.GetDescription() != vs[i].Description {
			t.Errorf("violation %d = %v, want %+v", i, v, vs[i])
		}
	}
	if st.Message() != "invalid config" {
		t.Errorf("message %q: a short list needs no note", st.Message())
	}
}

// trailerBytes is how many bytes of HTTP/2 header list the status st takes as gRPC trailers:
// grpc-status, grpc-message (percent-encoded as gRPC sends it) and grpc-status-details-bin
// (the whole status as base64), each with the 32 bytes HTTP/2 counts per entry.
func trailerBytes(t *testing.T, msg string, details []byte) int {
	t.Helper()
	encoded := 0
	for i := 0; i < len(msg); i++ {
		if c := msg[i]; c < 0x20 || c > 0x7e || c == '%' {
			encoded += 3
		} else {
			encoded++
		}
	}
	return len("grpc-status") + 2 + 32 +
		len("grpc-message") + encoded + 32 +
		len("grpc-status-details-bin") + base64.RawStdEncoding.EncodedLen(len(details)) + 32
}

// TestStatusBoundsTrailers: whatever the error holds, its trailers stay well under the 8 KiB
// of metadata non-Go gRPC clients accept, every echoed string is valid UTF-8 within its bound,
// and a long violation list says how many problems it leaves out.
func TestStatusBoundsTrailers(t *testing.T) {
	long := func(s string) string { return strings.Repeat(s, 5000) }
	many := func(n int, field, desc string) []connector.Violation {
		vs := make([]connector.Violation, n)
		for i := range vs {
			vs[i] = connector.Violation{Field: fmt.Sprintf("%s[%d]", field, i), Description: desc}
		}
		return vs
	}
	tests := []struct {
		name    string
		err     *connector.Error
		omitted int // violations the message must say are left out
	}{
		{"short", &connector.Error{Reason: connector.ReasonInvalidRequest, Message: "bad", Violations: many(1, "to", "is required")}, 0},
		{"exactly the listed maximum", &connector.Error{Reason: connector.ReasonInvalidConfig, Message: "bad", Violations: many(MaxStatusViolations, "config.templates", "x")}, 0},
		{"54 template problems", &connector.Error{Reason: connector.ReasonInvalidConfig, Message: "invalid Twilio configuration, 54 problems; first: templates[0].content does not contain {{code}}",
			Violations: many(54, "config.templates", "does not contain {{code}}: the message would not carry the verification code")}, 44},
		{"a 5,000-character key", &connector.Error{Reason: connector.ReasonInvalidConfig, Message: "invalid: " + long("k") + " is not a field",
			Violations: []connector.Violation{{Field: "config." + long("k"), Description: "is not a field"}}}, 0},
		{"everything long and non-ASCII", &connector.Error{Reason: connector.ReasonProviderRejected, Message: long("ж€"),
			Provider: long("п"), ProviderCode: long("9"), MoreInfo: "https://example.com/" + long("ü"),
			Violations: many(1000, long("ф"), long("🙂"))}, 1000 - MaxStatusViolations},
		{"control characters", &connector.Error{Reason: connector.ReasonInvalidRequest, Message: long("\x01%"),
			Violations: many(20, long("\x02"), long("%"))}, 10},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st := Status(tt.err)
			b, err := proto.Marshal(st.Proto())
			if err != nil {
				t.Fatal(err)
			}
			if n := trailerBytes(t, st.Message(), b); n > 6<<10 {
				t.Errorf("trailers take %d bytes, want at most 6 KiB", n)
			}
			if msg := st.Message(); len(msg) > MaxStatusMessageBytes || !utf8.ValidString(msg) {
				t.Errorf("message of %d bytes (valid UTF-8: %v), want at most %d", len(msg), utf8.ValidString(msg), MaxStatusMessageBytes)
			}
			if len(tt.err.Message) > MaxStatusMessageBytes && !strings.Contains(st.Message(), ellipsis) {
				t.Errorf("message %q was cut without an ellipsis", st.Message())
			}
			note := fmt.Sprintf("(... and %d more; ValidateConfig lists every problem)", tt.omitted)
			if got := strings.HasSuffix(st.Message(), note); got != (tt.omitted > 0) {
				t.Errorf("message %q: ends with %q is %v, want %v", st.Message(), note, got, tt.omitted > 0)
			}
			var listed int
			for _, d := range st.Details() {
				switch d := d.(type) {
				case *errdetails.ErrorInfo:
					if d.GetReason() != string(tt.err.Reason) {
						t.Errorf("reason %q, want %q", d.GetReason(), tt.err.Reason)
					}
					for k, v := range d.GetMetadata() {
						if len(v) > MaxMetadataValueBytes || !utf8.ValidString(v) {
							t.Errorf("metadata %s of %d bytes, want at most %d of UTF-8", k, len(v), MaxMetadataValueBytes)
						}
					}
				case *errdetails.BadRequest:
					listed = len(d.GetFieldViolations())
					for _, v := range d.GetFieldViolations() {
						if len(v.GetField()) > MaxViolationFieldBytes || !utf8.ValidString(v.GetField()) ||
							len(v.GetDescription()) > MaxViolationDescriptionBytes || !utf8.ValidString(v.GetDescription()) {
							t.Errorf("violation %q: %q over its bound or not UTF-8", v.GetField(), v.GetDescription())
						}
					}
				}
			}
			if want := min(len(tt.err.Violations), MaxStatusViolations); listed != want {
				t.Errorf("BadRequest lists %d violations, want %d", listed, want)
			}
		})
	}
}

func TestTruncateUTF8(t *testing.T) {
	tests := []struct {
		in   string
		n    int
		want string
	}{
		{"short", 10, "short"},
		{"exactly10!", 10, "exactly10!"},
		{"abcdefghijk", 10, "abcdefg…"},
		{"жжжжжж", 10, "жжж…"}, // 2-byte characters: 6 bytes + 3 for the ellipsis
		{"a🙂🙂", 7, "a…"},       // never half a 4-byte character
		{"abc", 2, "…"},        // a bound below the ellipsis still cuts
		{"", 0, ""},
	}
	for _, tt := range tests {
		got := truncateUTF8(tt.in, tt.n)
		if got != tt.want || (len(got) > max(tt.n, len(ellipsis))) || !utf8.ValidString(got) {
			t.Errorf("truncateUTF8(%q, %d) = %q, want %q", tt.in, tt.n, got, tt.want)
		}
	}
}
