package server

import (
	"bytes"
	"testing"

	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/proto"

	"github.com/sms-connector/sms-connector/connector"
	smsv1 "github.com/sms-connector/sms-connector/gen/connector/sms/v1"
	"github.com/sms-connector/sms-connector/internal/protoconv"
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
	codec := newRequestCodec(0)
	f.Fuzz(func(t *testing.T, b []byte) {
		for _, v := range scanStrings(b, md) {
			switch v.Field {
			case "to", "idempotency_key", "client_ip", "config", "config_json", "payload.code", "payload.locale", "payload.variables", "payload":
			default:
				t.Fatalf("scanStrings named %q, not a field of the request", v.Field)
			}
		}
		// The whole codec: a request decodes, or is marked with an INVALID_REQUEST or
		// INVALID_PHONE_NUMBER failure; nothing else.
		m := &smsv1.SendMessageRequest{}
		if err := codec.Unmarshal(mem.BufferSlice{mem.SliceBuffer(b)}, m); err != nil {
			t.Fatalf("the codec failed a request of ours: %v", err)
		}
		if err := decodeFailure(m); err != nil {
			if r := connector.ReasonOf(err); r != connector.ReasonInvalidRequest && r != connector.ReasonInvalidPhoneNumber {
				t.Fatalf("decode failure %v", err)
			}
		} else if proto.Unmarshal(b, &smsv1.SendMessageRequest{}) != nil {
			t.Fatalf("bytes protobuf refuses were let through")
		}
	})
}

// FuzzConfigCodec checks that the codec's configuration cache changes nothing a request
// means: for any bytes, the codec (with one cache for the whole run, so later inputs hit what
// earlier ones stored) yields the configuration JSON and the other fields that a plain
// protobuf decode of the same bytes yields, and refuses exactly what protobuf refuses.
func FuzzConfigCodec(f *testing.F) {
	for _, cfg := range []map[string]any{
		{"accountSID": "AC1", "authToken": "t", "from": "+15005550006", "templates": []any{map[string]any{"usageType": "Generic", "content": "{{code}}"}}},
		{"accountSID": "AC1", "authToken": "t", "from": "+15005550006", "n": 1.5, "b": true, "z": nil},
		{"a": []any{1.0, "x", false, nil, map[string]any{}}},
	} {
		b, err := proto.Marshal(&smsv1.SendMessageRequest{To: "+14155550123", UsageType: 2, Payload: &smsv1.Payload{Code: "1"}, Config: mustStruct(f, cfg)})
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte("\x22\x0a\x0a\x08\x0a\x01a\x12\x03\x1a\x01\xff"))                       // config: a value not UTF-8
	f.Add([]byte("\x22\x08\x0a\x06\x0a\x01a\x12\x01\x00\x22\x00"))                       // config twice
	f.Add([]byte("\x22\x0a\x0a\x08\x0a\x01a\x12\x03\x1a\x01x\xf2\xff\xff\xff\x0f\x01x")) // a forged mark
	codec := newRequestCodec(0)
	f.Fuzz(func(t *testing.T, b []byte) {
		plain := &smsv1.SendMessageRequest{}
		perr := proto.Unmarshal(b, plain)
		m := &smsv1.SendMessageRequest{}
		if err := codec.Unmarshal(mem.BufferSlice{mem.SliceBuffer(b)}, m); err != nil {
			t.Fatalf("the codec failed a request of ours: %v", err)
		}
		if perr != nil {
			if decodeFailure(m) == nil {
				t.Fatalf("bytes protobuf refuses (%v) were let through", perr)
			}
			return
		}
		if err := decodeFailure(m); err != nil {
			t.Fatalf("bytes protobuf decodes were refused: %v", err)
		}
		want, werr := protoconv.StructToJSON(plain.GetConfig())
		got, gerr := structConfig(m)
		if (werr == nil) != (gerr == nil) || !bytes.Equal(want, got) {
			t.Fatalf("config JSON %q (%v), want %q (%v)", got, gerr, want, werr)
		}
		plain.Config, m.Config = nil, nil
		stripMarker(plain)
		stripMarker(m)
		if !proto.Equal(plain, m) {
			t.Fatalf("request %v, want %v", m, plain)
		}
	})
}
