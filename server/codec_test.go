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

func TestFindField(t *testing.T) {
	field := func(num protowire.Number, v string) []byte {
		return protowire.AppendBytes(protowire.AppendTag(nil, num, protowire.BytesType), []byte(v))
	}
	// The tag of field 4 written in two bytes (a legal, overlong varint), then a value.
	overlong := append([]byte{4<<3 | 2 | 0x80, 0x00}, protowire.AppendBytes(nil, []byte("abc"))...)
	tests := []struct {
		name      string
		b         []byte
		wantValue string
		wantOK    bool
	}{
		{"present once", bytes.Join([][]byte{field(1, "x"), field(4, "abc"), field(5, "y")}, nil), "abc", true},
		{"absent", field(1, "x"), "", false},
		{"twice", append(field(4, "a"), field(4, "b")...), "", false},
		{"as a varint", protowire.AppendVarint(protowire.AppendTag(nil, 4, protowire.VarintType), 1), "", false},
		{"truncated", field(4, "abc")[:3], "", false},
		{"overlong tag", overlong, "abc", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			start, end, v, ok := findField(tt.b, 4)
			if ok != tt.wantOK || string(v) != tt.wantValue {
				t.Fatalf("findField = %q, %v; want %q, %v", v, ok, tt.wantValue, tt.wantOK)
			}
			if ok {
				rest := append(append([]byte(nil), tt.b[:start]...), tt.b[end:]...)
				if _, _, _, again := findField(rest, 4); again || len(rest) != len(tt.b)-(end-start) {
					t.Fatalf("cutting b[%d:%d] leaves the field in %x", start, end, rest)
				}
			}
		})
	}
}
