package server

import (
	"bytes"
	"testing"

	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	smsv1 "github.com/sms-connector/sms-connector/gen/connector/sms/v1"
)

// decodeWith runs the codec on b and returns the request and its configuration JSON.
func decodeWith(t *testing.T, c requestCodec, b []byte) (*smsv1.SendMessageRequest, []byte) {
	t.Helper()
	r := &smsv1.SendMessageRequest{}
	if err := c.Unmarshal(mem.BufferSlice{mem.SliceBuffer(b)}, r); err != nil {
		t.Fatal(err)
	}
	if err := decodeFailure(r); err != nil {
		t.Fatal(err)
	}
	js, _, err := requestConfig(r)
	if err != nil {
		t.Fatal(err)
	}
	return r, js
}

func TestCodecConfigCache(t *testing.T) {
	cfg := mustStruct(t, map[string]any{
		"accountSID": "AC1", "authToken": "t", "from": "+15005550006",
		"templates": []any{map[string]any{"usageType": "Generic", "content": "{{code}}"}},
	})
	req := &smsv1.SendMessageRequest{To: "+14155550123", UsageType: 2, Payload: &smsv1.Payload{Code: "1"}, Config: cfg}
	const want = `{"accountSID":"AC1","authToken":"t","from":"+15005550006","templates":[{"content":"{{code}}","usageType":"Generic"}]}`

	c := newRequestCodec(0)
	encodings := map[string]bool{}
	for range 50 { // Go's marshaller writes the map entries in a new order each time
		b, err := proto.Marshal(req)
		if err != nil {
			t.Fatal(err)
		}
		encodings[string(b)] = true
		r, js := decodeWith(t, c, b)
		if string(js) != want {
			t.Fatalf("config JSON %s, want %s", js, want)
		}
		if r.GetConfig() != nil || r.GetTo() != req.GetTo() || r.GetPayload().GetCode() != "1" {
			t.Fatalf("request decoded as %v", r)
		}
	}
	if len(encodings) < 2 || c.configs.Len() != 1 {
		t.Fatalf("%d encodings left %d cache entries, want 1", len(encodings), c.configs.Len())
	}

	// A Struct the digest refuses (the same key twice) is decoded the ordinary way, and not kept.
	entry := func(k, v string) []byte {
		val := protowire.AppendBytes(protowire.AppendTag(nil, 3, protowire.BytesType), []byte(v))
		e := protowire.AppendBytes(protowire.AppendTag(nil, 1, protowire.BytesType), []byte(k))
		e = protowire.AppendBytes(protowire.AppendTag(e, 2, protowire.BytesType), val)
		return protowire.AppendBytes(protowire.AppendTag(nil, 1, protowire.BytesType), e)
	}
	dup := bytes.Join([][]byte{entry("from", "+1"), entry("from", "+2")}, nil)
	b := protowire.AppendBytes(protowire.AppendTag(nil, sendConfigField, protowire.BytesType), dup)
	r, js := decodeWith(t, c, b)
	if string(js) != `{"from":"+2"}` || r.GetConfig() == nil {
		t.Fatalf("duplicate-key config: JSON %s, Struct %v; want the last value, decoded as a Struct", js, r.GetConfig())
	}
	if c.configs.Len() != 1 {
		t.Fatalf("a refused Struct was cached: %d entries", c.configs.Len())
	}

	// With the cache off, the Struct is decoded and converted every time, to the same JSON.
	off := newRequestCodec(-1)
	b, err := proto.Marshal(req)
	if err != nil {
		t.Fatal(err)
	}
	if r, js := decodeWith(t, off, b); string(js) != want || r.GetConfig() == nil {
		t.Fatalf("cache off: JSON %s, Struct %v", js, r.GetConfig())
	}
}
