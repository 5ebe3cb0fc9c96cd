package structdigest

import (
	"bytes"
	"math"
	"strings"
	"testing"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/structpb"
)

// mustStruct builds a Struct from a Go value, failing the test on error.
func mustStruct(t testing.TB, v map[string]any) *structpb.Struct {
	t.Helper()
	s, err := structpb.NewStruct(v)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// wire returns the deterministic wire bytes of m.
func wire(t testing.TB, m proto.Message) []byte {
	t.Helper()
	b, err := proto.MarshalOptions{Deterministic: true}.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// digestOf returns Digest(b), failing the test when b gets none.
func digestOf(t testing.TB, b []byte) [32]byte {
	t.Helper()
	d, ok := Digest(b)
	if !ok {
		t.Fatalf("Digest(%x) refused a plain Struct", b)
	}
	return d
}

// config is a Twilio-like configuration with enough keys that Go's random map order shows.
func config() map[string]any {
	return map[string]any{
		"accountSID": "AC00000000000000000000000000000000",
		"authToken":  "secret",
		"from":       "+15005550006",
		"validity":   float64(60),
		"risk":       true,
		"nothing":    nil,
		"templates": []any{
			map[string]any{"usageType": "Register", "content": "Your code is {{code}}."},
			map[string]any{"usageType": "Generic", "content": "Code: {{code}}", "b": 1.5, "a": false},
		},
		"nested": map[string]any{"z": "1", "y": []any{}, "x": map[string]any{}},
	}
}

func TestDigestIgnoresEntryOrder(t *testing.T) {
	s := mustStruct(t, config())
	want := digestOf(t, wire(t, s))
	seen := map[string]bool{}
	for range 200 { // Go writes map entries in random order unless Deterministic is set
		b, err := proto.Marshal(s)
		if err != nil {
			t.Fatal(err)
		}
		seen[string(b)] = true
		if got := digestOf(t, b); got != want {
			t.Fatalf("digest differs for another encoding of the same Struct")
		}
	}
	if len(seen) < 2 {
		t.Fatalf("200 encodings were all identical; the test did not exercise entry order")
	}
}

func TestDigestTellsValuesApart(t *testing.T) {
	base := config()
	variants := map[string]func(m map[string]any){
		"string changed":       func(m map[string]any) { m["from"] = "+15005550007" },
		"number changed":       func(m map[string]any) { m["validity"] = float64(61) },
		"number as string":     func(m map[string]any) { m["validity"] = "60" },
		"bool flipped":         func(m map[string]any) { m["risk"] = false },
		"null to empty string": func(m map[string]any) { m["nothing"] = "" },
		"key removed":          func(m map[string]any) { delete(m, "nothing") },
		"key renamed":          func(m map[string]any) { m["authtoken"] = m["authToken"]; delete(m, "authToken") },
		"list order":           func(m map[string]any) { l := m["templates"].([]any); m["templates"] = []any{l[1], l[0]} },
		"list shorter":         func(m map[string]any) { m["templates"] = m["templates"].([]any)[:1] },
		"nested value changed": func(m map[string]any) { m["nested"] = map[string]any{"z": "2", "y": []any{}, "x": map[string]any{}} },
		"empty list to struct": func(m map[string]any) {
			m["nested"] = map[string]any{"z": "1", "y": map[string]any{}, "x": map[string]any{}}
		},
		"string split over key": func(m map[string]any) { m["ab"] = "c"; m["a"] = "bc" },
		"negative zero":         func(m map[string]any) { m["validity"] = math.Copysign(0, -1) },
	}
	seen := map[[32]byte]string{digestOf(t, wire(t, mustStruct(t, base))): "base"}
	for name, change := range variants {
		m := config()
		change(m)
		d := digestOf(t, wire(t, mustStruct(t, m)))
		if other, dup := seen[d]; dup {
			t.Errorf("%s: same digest as %s", name, other)
		}
		seen[d] = name
	}
}

// Hand-written wire helpers for encodings Go's marshaller never writes.
func field(num protowire.Number, v []byte) []byte {
	return protowire.AppendBytes(protowire.AppendTag(nil, num, protowire.BytesType), v)
}

func varintField(num protowire.Number, v uint64) []byte {
	return protowire.AppendVarint(protowire.AppendTag(nil, num, protowire.VarintType), v)
}

func entryWire(key string, value []byte) []byte {
	return field(structFields, append(field(entryKey, []byte(key)), field(entryValue, value)...))
}

func stringValue(s string) []byte { return field(valueString, []byte(s)) }

func cat(bs ...[]byte) []byte { return bytes.Join(bs, nil) }

func TestDigestRefusesWhatIsNotPlain(t *testing.T) {
	deep := stringValue("x")
	for range MaxDepth {
		deep = field(valueStruct, entryWire("k", deep))
	}
	tests := []struct {
		name string
		b    []byte
	}{
		{"duplicate key", cat(entryWire("a", stringValue("1")), entryWire("a", stringValue("2")))},
		{"value with two kinds", entryWire("a", cat(stringValue("1"), varintField(valueBool, 1)))},
		{"value kind twice", entryWire("a", cat(stringValue("1"), stringValue("2")))},
		{"value with no kind", entryWire("a", nil)},
		{"entry without value", field(structFields, field(entryKey, []byte("a")))},
		{"entry with key twice", field(structFields, cat(field(entryKey, []byte("a")), field(entryKey, []byte("b")), field(entryValue, stringValue("1"))))},
		{"unknown field in Struct", cat(entryWire("a", stringValue("1")), field(2, []byte("x")))},
		{"unknown field in Value", entryWire("a", field(9, []byte("x")))},
		{"unknown field in entry", field(structFields, cat(field(entryKey, []byte("a")), field(entryValue, stringValue("1")), field(3, nil)))},
		{"Struct field as varint", varintField(structFields, 1)},
		{"string as varint", entryWire("a", varintField(valueString, 1))},
		{"key not UTF-8", entryWire("\xff", stringValue("1"))},
		{"string not UTF-8", entryWire("a", stringValue("\xc3\x28"))},
		{"bool of 2", entryWire("a", varintField(valueBool, 2))},
		{"null of 1", entryWire("a", varintField(valueNull, 1))},
		{"truncated", entryWire("a", stringValue("1"))[:5]},
		{"list holding a non-value field", entryWire("a", field(valueList, field(2, stringValue("1"))))},
		{"nested too deep", entryWire("a", deep)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, ok := Digest(tt.b); ok {
				t.Fatalf("Digest(%x) = ok, want refused", tt.b)
			}
		})
	}
}

func TestDigestAcceptsPlainHandWrittenForms(t *testing.T) {
	tests := []struct {
		name string
		b    []byte
		want map[string]any
	}{
		{"empty Struct", nil, map[string]any{}},
		{"entry value before key", field(structFields, cat(field(entryValue, stringValue("1")), field(entryKey, []byte("a")))), map[string]any{"a": "1"}},
		{"absent key is the empty key", field(structFields, field(entryValue, stringValue("1"))), map[string]any{"": "1"}},
		{"nested just below the limit", entryWire("a", field(valueStruct, nil)), map[string]any{"a": map[string]any{}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got, want := digestOf(t, tt.b), digestOf(t, wire(t, mustStruct(t, tt.want))); got != want {
				t.Fatalf("digest of %x differs from that of the same value written by Go", tt.b)
			}
		})
	}
}

func TestDigestOfLargeStructs(t *testing.T) {
	m := map[string]any{}
	for i := range 100 { // more entries than the on-stack buffer holds
		m[strings.Repeat("k", i+1)] = float64(i)
	}
	s := mustStruct(t, m)
	b, err := proto.Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	if digestOf(t, b) != digestOf(t, wire(t, s)) {
		t.Fatal("digest depends on entry order for a large Struct")
	}
}

// FuzzDigest checks the two properties the server's configuration cache rests on, for any
// bytes: a Struct that gets a digest decodes, and the canonical form of it equals that of its
// decoded value written deterministically (so every encoding of one value shares a digest);
// and two inputs with the same canonical form decode to equal Structs (so a digest never
// stands for two values).
func FuzzDigest(f *testing.F) {
	f.Add(wire(f, mustStruct(f, config())), []byte(nil))
	f.Add(entryWire("a", stringValue("1")), entryWire("a", varintField(valueBool, 1)))
	f.Add(entryWire("", field(valueList, field(listValues, varintField(valueNull, 0)))), []byte{})
	f.Fuzz(func(t *testing.T, a, b []byte) {
		ca, okA := appendCanonical(nil, a)
		cb, okB := appendCanonical(nil, b)
		if okA {
			var s structpb.Struct
			if err := proto.Unmarshal(a, &s); err != nil {
				t.Fatalf("Digest accepted %x, which does not decode: %v", a, err)
			}
			if again, ok := appendCanonical(nil, wire(t, &s)); !ok || !bytes.Equal(again, ca) {
				t.Fatalf("canonical form of %x differs from that of its decoded value", a)
			}
		}
		if okA && okB && bytes.Equal(ca, cb) {
			var sa, sb structpb.Struct
			if proto.Unmarshal(a, &sa) != nil || proto.Unmarshal(b, &sb) != nil || !proto.Equal(&sa, &sb) {
				t.Fatalf("%x and %x share a canonical form but decode to different Structs", a, b)
			}
		}
	})
}

func BenchmarkDigest(b *testing.B) {
	raw := wire(b, mustStruct(b, config()))
	b.ReportAllocs()
	b.SetBytes(int64(len(raw)))
	for b.Loop() {
		if _, ok := Digest(raw); !ok {
			b.Fatal("refused")
		}
	}
}
