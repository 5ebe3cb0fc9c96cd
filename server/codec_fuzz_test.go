package server

import (
	"testing"

	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/proto"

	"github.com/sms-connector/sms-connector/connector"
	smsv1 "github.com/sms-connector/sms-connector/gen/connector/sms/v1"
)

// FuzzScanStrings feeds the codec's scanner of undecodable requests hostile wire bytes: it
// must never panic, and every field it names is a field path of the request.
func FuzzScanStrings(f *testing.F) {
	valid, _ := proto.Marshal(&smsv1.SendMessageRequest{To: "+14155550123", UsageType: 2, Payload: &smsv1.Payload{Code: "1"}})
	f.Add(valid)
	f.Add([]byte("\x0a\x03\xff\xfe\xfd"))                          // to: not UTF-8
	f.Add([]byte("\x1a\x05\x0a\x03\xc0\xaf\x31"))                  // payload.code: not UTF-8
	f.Add([]byte("\x22\x0a\x0a\x08\x0a\x01a\x12\x03\x1a\x01\xff")) // config: a value not UTF-8
	f.Add([]byte{0x0a, 0xff, 0xff, 0xff})                          // a length that never ends
	f.Add([]byte{0xfa, 0xff, 0xff, 0xff, 0x0f, 0x00})              // the marker's field number
	md := (&smsv1.SendMessageRequest{}).ProtoReflect().Descriptor()
	f.Add([]byte("\x0a\x02to\xfa\xff\xff\xff\x0f\x01x")) // a forged mark
	codec := newRequestCodec()
	f.Fuzz(func(t *testing.T, b []byte) {
		for _, v := range scanStrings(b, md) {
			switch v.Field {
			case "to", "idempotency_key", "client_ip", "config", "config_json", "payload.code", "payload.locale", "payload.variables", "payload.link", "payload.ui_locales", "payload":
			default:
				t.Fatalf("scanStrings named %q, not a field of the request", v.Field)
			}
		}
		// The whole codec: a request decodes as protobuf decodes it (less a forged mark), or,
		// exactly when protobuf refuses it, is marked with an INVALID_REQUEST or
		// INVALID_PHONE_NUMBER failure; nothing else.
		m := &smsv1.SendMessageRequest{}
		if err := codec.Unmarshal(mem.BufferSlice{mem.SliceBuffer(b)}, m); err != nil {
			t.Fatalf("the codec failed a request of ours: %v", err)
		}
		plain := &smsv1.SendMessageRequest{}
		perr := proto.Unmarshal(b, plain)
		failure := decodeFailure(m)
		switch {
		case perr != nil && failure == nil:
			t.Fatalf("bytes protobuf refuses (%v) were let through", perr)
		case perr == nil && failure != nil:
			t.Fatalf("bytes protobuf decodes were refused: %v", failure)
		case failure != nil:
			if r := connector.ReasonOf(failure); r != connector.ReasonInvalidRequest && r != connector.ReasonInvalidPhoneNumber {
				t.Fatalf("decode failure %v", failure)
			}
		default:
			stripMarker(plain)
			if !proto.Equal(plain, m) {
				t.Fatalf("request %v, want %v", m, plain)
			}
		}
	})
}
