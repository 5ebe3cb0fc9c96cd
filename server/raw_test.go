package server_test

import (
	"context"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/encoding"
	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	smsv1 "github.com/sms-connector/sms-connector/gen/connector/sms/v1"
)

// rawBytes is a request already in wire form, sent as it is: bytes a Go client could never
// marshal (strings that are not UTF-8, malformed data), as a client in another language can.
type rawBytes []byte

// rawCodec sends rawBytes unchanged and everything else as gRPC's proto codec does.
type rawCodec struct{}

func (rawCodec) Name() string { return "proto" }

func (rawCodec) Marshal(v any) (mem.BufferSlice, error) {
	if b, ok := v.(rawBytes); ok {
		return mem.BufferSlice{mem.SliceBuffer(b)}, nil
	}
	return encoding.GetCodecV2("proto").Marshal(v)
}

func (rawCodec) Unmarshal(data mem.BufferSlice, v any) error {
	return encoding.GetCodecV2("proto").Unmarshal(data, v)
}

// sendRaw calls SendMessage with the wire bytes b.
func sendRaw(ctx context.Context, conn grpc.ClientConnInterface, b []byte) (*smsv1.SendMessageResponse, error) {
	resp := &smsv1.SendMessageResponse{}
	err := conn.Invoke(ctx, smsv1.SmsConnector_SendMessage_FullMethodName, rawBytes(b), resp, grpc.ForceCodecV2(rawCodec{}))
	return resp, err
}

// wire marshals m.
func wire(t *testing.T, m proto.Message) []byte {
	t.Helper()
	b, err := proto.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// appendString appends field num with the bytes s, as a string field on the wire.
func appendString(b []byte, num protowire.Number, s string) []byte {
	return protowire.AppendString(protowire.AppendTag(b, num, protowire.BytesType), s)
}

// appendMessage appends field num holding the message bytes m.
func appendMessage(b []byte, num protowire.Number, m []byte) []byte {
	return protowire.AppendBytes(protowire.AppendTag(b, num, protowire.BytesType), m)
}

// Field numbers of the contract and of google.protobuf.Struct used to build raw requests.
const (
	fieldTo             protowire.Number = 1 // SendMessageRequest.to
	fieldPayload        protowire.Number = 3 // SendMessageRequest.payload
	fieldConfig         protowire.Number = 4 // SendMessageRequest.config
	fieldConfigJSON     protowire.Number = 7 // SendMessageRequest.config_json
	fieldCode           protowire.Number = 1 // Payload.code
	fieldLocale         protowire.Number = 2 // Payload.locale
	fieldVariables      protowire.Number = 3 // Payload.variables
	fieldLink           protowire.Number = 4 // Payload.link
	structFields        protowire.Number = 1 // Struct.fields (map entries)
	entryKey            protowire.Number = 1 // map entry key
	entryValue          protowire.Number = 2 // map entry value
	valueString         protowire.Number = 3 // Value.string_value
	valueStruct         protowire.Number = 5 // Value.struct_value
	fieldValidateConfig protowire.Number = 1 // ValidateConfigRequest.config
)

// structWithString is a google.protobuf.Struct {key: string value} in wire form, the value
// bytes as given.
func structWithString(key, value string) []byte {
	v := appendString(nil, valueString, value)
	entry := appendMessage(appendString(nil, entryKey, key), entryValue, v)
	return appendMessage(nil, structFields, entry)
}

// nestedStruct is a Struct nested depth times under the key "n", in wire form.
func nestedStruct(depth int) []byte {
	inner := structWithString("n", "x")
	for range depth {
		v := appendMessage(nil, valueStruct, inner)
		entry := appendMessage(appendString(nil, entryKey, "n"), entryValue, v)
		inner = appendMessage(nil, structFields, entry)
	}
	return inner
}
