package twilio

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/sms-connector/sms-connector/connector"
	"github.com/sms-connector/sms-connector/connector/twilio/twiliotest"
)

// handlerTransport is a RoundTripper that serves each request with the emulator's handler in
// process, and keeps the last body it answered.
type handlerTransport struct {
	h    http.Handler
	last []byte
}

func (t *handlerTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	rec := httptest.NewRecorder()
	t.h.ServeHTTP(rec, req)
	resp := rec.Result()
	resp.Request = req
	t.last = bytes.Clone(rec.Body.Bytes())
	return resp, nil
}

// emulatorAnswer returns the body of the emulator's answer to a SignIn message with code, sent
// by a Connector (from a number when from is set, else through emuService): a message resource
// exactly as the emulator builds it.
func emulatorAnswer(tb testing.TB, code string, from bool) []byte {
	tb.Helper()
	srv := twiliotest.NewUnstartedServer(twiliotest.WithAccount(testAccount, emuToken), twiliotest.WithSenders("+15005550006"))
	defer srv.Close()
	cfg := map[string]any{
		"accountSID": testAccount,
		"authToken":  emuToken,
		"templates":  []any{tpl("SignIn", "Sign in with {{code}} at {{application.name}}")},
	}
	if from {
		cfg["from"] = "+15005550006"
	} else {
		cfg["fromMessagingServiceSID"] = emuService
	}
	raw, err := json.Marshal(cfg)
	if err != nil {
		tb.Fatal(err)
	}
	tr := &handlerTransport{h: srv.Handler()}
	c, err := New(Options{Transport: tr})
	if err != nil {
		tb.Fatal(err)
	}
	msg := &connector.Message{
		To:        recipient,
		UsageType: connector.UsageSignIn,
		Payload:   connector.Payload{Code: code, Variables: map[string]any{"application": map[string]any{"name": "Acme"}}},
		Config:    raw,
	}
	if _, err := c.Send(context.Background(), msg); err != nil {
		tb.Fatalf("Send to the emulator: %v", err)
	}
	return tr.last
}

// jsonDecode is what the connector used to do, and must still give: the first JSON value of b
// decoded by encoding/json's Decoder into a createdMessage.
func jsonDecode(b []byte) (createdMessage, error) {
	var m createdMessage
	err := json.NewDecoder(bytes.NewReader(b)).Decode(&m)
	return m, err
}

// nest returns {"a": followed by depth-1 arrays, nested, then "sid":"SMx": an object of depth
// depth.
func nest(depth int) string {
	return `{"a":` + strings.Repeat("[", depth-1) + strings.Repeat("]", depth-1) + `,"sid":"SMx"}`
}

// TestDecodeCreated: decodeCreated decodes every answer Twilio or the emulator sends, and
// whatever else it is sure of, as encoding/json does; it declines the rest.
func TestDecodeCreated(t *testing.T) {
	const sid = "SM0123456789abcdef0123456789abcdef"
	emu := emulatorAnswer(t, "123456", false)
	emuWant, err := jsonDecode(emu)
	if err != nil || emuWant.Sid == "" || emuWant.Status != "accepted" {
		t.Fatalf("the emulator's answer %s decodes to %+v, %v", emu, emuWant, err)
	}
	emuFrom := emulatorAnswer(t, `<&> "é" \ `+"\u2028", true)
	emuFromWant, err := jsonDecode(emuFrom)
	if err != nil || emuFromWant.Sid == "" || emuFromWant.Status != "queued" || !bytes.Contains(emuFrom, []byte(`\u003c`)) {
		t.Fatalf("the emulator's answer %s decodes to %+v, %v", emuFrom, emuFromWant, err)
	}

	type result struct {
		ok          bool
		sid, status string
	}
	yes := func(sid, status string) result { return result{true, sid, status} }
	no := result{}
	tests := []struct {
		name string
		body string
		want result
	}{
		// Answers as Twilio and the emulator send them.
		{"Twilio's answer", twilioMessageJSON, yes(sid, "accepted")},
		{"emulator's answer", string(emu), yes(emuWant.Sid, "accepted")},
		{"emulator's answer with escapes, from a number", string(emuFrom), yes(emuFromWant.Sid, "queued")},
		{"sid and status only", `{"sid":"SMx","status":"queued"}`, yes("SMx", "queued")},
		{"no status", `{"sid":"SMx"}`, yes("SMx", "")},
		{"empty object", `{}`, yes("", "")},
		{"empty object with spaces", "{ \t\r\n}", yes("", "")},
		{"empty strings", `{"sid":"","status":""}`, yes("", "")},
		{"non-ASCII values", `{"sid":"SMé","status":"状态"}`, yes("SMé", "状态")},
		{"DEL in a value", "{\"sid\":\"SM\x7f\"}", yes("SM\x7f", "")},

		// Other members: escapes, nesting, numbers, literals.
		{"escapes in other values", `{"body":"a\"b\\c\/d\b\f\n\r\t\u00e9\uD83D\uDE00\u0000","sid":"SMx","status":"queued"}`, yes("SMx", "queued")},
		{"lone surrogate in another value", `{"body":"\ud800","sid":"SMx"}`, yes("SMx", "")},
		{"invalid UTF-8 in another value", "{\"body\":\"\xff\xfe\",\"sid\":\"SMx\"}", yes("SMx", "")},
		{"invalid UTF-8 in another name", "{\"\xff\":1,\"sid\":\"SMx\"}", no},
		{"escape in a nested name", `{"x":{"s\u0069d":"no","\"":1},"sid":"SMx"}`, yes("SMx", "")},
		{"sid and status in nested values", `{"subresource_uris":{"sid":"inner","status":[1]},"a":[{"sid":2}],"sid":"SMx","status":"sent"}`, yes("SMx", "sent")},
		{"nested objects and arrays", `{"a":[1,[2,{"b":[]}],{},[[]],"s",true,false,null],"e":{},"o":{"p":{"q":{"r":null}}},"sid":"SMx","arr":[ ]}`, yes("SMx", "")},
		{"whitespace everywhere", "{ \"a\" :\t[ 1 , { \"b\" : null } ]\r\n, \"sid\"\n:\n\"SMx\" , \"status\" : \"queued\" }", yes("SMx", "queued")},
		{"numbers of every shape", `{"n":[0,-0,1,-1,10,907,123456789012345678901234567890,0.5,-0.5,10.25,1e5,1E5,1e+5,1e-5,1.5e10,-1.5E-10,0e0,0.0e-0,-0.0E+00,1e400,5e-400],"m":0,"k":-12.5e3,"sid":"SMx"}`, yes("SMx", "")},
		{"number before the closing brace", `{"sid":"SMx","n":1}`, yes("SMx", "")},
		{"literals", `{"t":true,"f":false,"n":null,"sid":"SMx"}`, yes("SMx", "")},
		{"num_segments a number", `{"sid":"SMx","status":"queued","num_segments":1}`, yes("SMx", "queued")},

		// Names: only an exact "sid" or "status" is decoded here.
		{"duplicate sid: the last wins", `{"sid":"SMa","status":"queued","sid":"SMb"}`, yes("SMb", "queued")},
		{"duplicate status: the last wins", `{"status":"x","sid":"SMa","status":"y"}`, yes("SMa", "y")},
		{"other names", `{"sid ":"a","si":"b","sids":"c","Status_":"d","_sid":"e","sid":"SMx"}`, yes("SMx", "")},
		{"SID", `{"SID":"SMx"}`, no},
		{"Sid after sid", `{"sid":"SMa","Sid":"SMb"}`, no},
		{"STATUS", `{"sid":"SMx","STATUS":"queued"}`, no},
		{"sTaTuS", `{"sid":"SMx","sTaTuS":"queued"}`, no},
		{"long s", `{"ſid":"SMx"}`, no},
		{"Kelvin sign", "{\"sid\":\"SMx\",\"\u212a\":1}", no},
		{"escaped name sid", `{"\u0073id":"SMx"}`, no},
		{"escaped other name", `{"a\nb":1,"sid":"SMx"}`, no},

		// sid and status values decodeCreated leaves to encoding/json.
		{"sid null", `{"sid":null,"status":"queued"}`, no},
		{"status null", `{"sid":"SMx","status":null}`, no},
		{"sid a number", `{"sid":42}`, no},
		{"sid true", `{"sid":true}`, no},
		{"sid an object", `{"sid":{"a":"b"}}`, no},
		{"sid an array", `{"sid":["SMx"]}`, no},
		{"status a number", `{"sid":"SMx","status":7}`, no},
		{"escape in sid", `{"sid":"SM\u0030"}`, no},
		{"escaped quote in status", `{"sid":"SMx","status":"a\"b"}`, no},
		{"invalid UTF-8 in sid", "{\"sid\":\"SM\xff\"}", no},
		{"truncated UTF-8 in status", "{\"sid\":\"SMx\",\"status\":\"\xe7\x8a\"}", no},

		// What follows the first value is ignored; whitespace may precede it.
		{"trailing data", `{"sid":"SMx","status":"queued"}` + "\n<!-- trailer -->", yes("SMx", "queued")},
		{"second value", `{"sid":"SMa"}{"sid":"SMb"}`, yes("SMa", "")},
		{"trailing bracket", `{"sid":"SMa"}]`, yes("SMa", "")},
		{"trailing control characters", "{\"sid\":\"SMa\"}\x00\x01", yes("SMa", "")},
		{"leading whitespace", " \t\r\n {\"sid\":\"SMx\"}", yes("SMx", "")},
		{"leading form feed", "\f{\"sid\":\"SMx\"}", no},
		{"leading BOM", "\ufeff{\"sid\":\"SMx\"}", no},

		// Syntax errors and values cut short.
		{"empty", ``, no},
		{"whitespace only", " \n", no},
		{"open brace", `{`, no},
		{"name only", `{"sid"`, no},
		{"no value", `{"sid":}`, no},
		{"no colon", `{"sid" "SMx"}`, no},
		{"no comma", `{"sid":"SMx" "status":"queued"}`, no},
		{"trailing comma", `{"sid":"SMx",}`, no},
		{"leading comma", `{,"sid":"SMx"}`, no},
		{"comma only", `{,}`, no},
		{"unquoted name", `{sid:"SMx"}`, no},
		{"single quotes", `{'sid':'SMx'}`, no},
		{"number name", `{1:2}`, no},
		{"unterminated sid", `{"sid":"SM`, no},
		{"unterminated other", `{"a":"x`, no},
		{"no closing brace", `{"sid":"SMx"`, no},
		{"no closing brace after a number", `{"sid":"SMx","n":1`, no},
		{"array trailing comma", `{"a":[1,],"sid":"SMx"}`, no},
		{"array leading comma", `{"a":[,1],"sid":"SMx"}`, no},
		{"array no comma", `{"a":[1 2],"sid":"SMx"}`, no},
		{"array closed by brace", `{"a":[1},"sid":"SMx"}`, no},
		{"object closed by bracket", `{"a":{"b":1],"sid":"SMx"}`, no},
		{"nested name without value", `{"a":{"b"},"sid":"SMx"}`, no},
		{"nested trailing comma", `{"a":{"b":1,},"sid":"SMx"}`, no},
		{"nested number name", `{"a":{1:2},"sid":"SMx"}`, no},
		{"truncated nested", `{"sid":"SMx","a":[{"b":`, no},
		{"tru", `{"a":tru,"sid":"SMx"}`, no},
		{"truex", `{"a":truex,"sid":"SMx"}`, no},
		{"nul", `{"a":nul}`, no},
		{"True", `{"a":True}`, no},
		{"literal cut short", `{"a":fals`, no},
		{"control character in a value", "{\"a\":\"\x01\",\"sid\":\"SMx\"}", no},
		{"tab in a value", "{\"a\":\"\t\",\"sid\":\"SMx\"}", no},
		{"newline in sid", "{\"sid\":\"SM\nx\"}", no},
		{"control character in a name", "{\"a\x1f\":1,\"sid\":\"SMx\"}", no},
		{"unknown escape", `{"a":"\q","sid":"SMx"}`, no},
		{"escaped single quote", `{"a":"\'","sid":"SMx"}`, no},
		{"short unicode escape", `{"a":"\u12","sid":"SMx"}`, no},
		{"bad unicode escape", `{"a":"\u12g4","sid":"SMx"}`, no},
		{"unicode escape cut short", `{"a":"\u12`, no},
		{"backslash at the end", `{"a":"\`, no},
		{"uppercase U escape", `{"a":"\U0041","sid":"SMx"}`, no},
		{"garbage value", `{"a":@,"sid":"SMx"}`, no},
		{"HTML", `<html><body>OK</body></html>`, no},
	}
	for _, n := range []string{"01", "-01", "00", "-", "+1", "1.", "-.5", ".5", "1.e5", "1e", "1e+", "1E-", "1e+-1", "--1",
		"0x1", "1_000", "Infinity", "-Infinity", "NaN", "1..2", "1.2.3", "1e5e5", "1ee5", "0.", "-a", "١"} {
		tests = append(tests, struct {
			name string
			body string
			want result
		}{"invalid number " + n, `{"n":` + n + `,"sid":"SMx"}`, no})
	}
	tests = append(tests, []struct {
		name string
		body string
		want result
	}{
		{"depth at the limit", nest(maxFastDepth), yes("SMx", "")},
		{"deeper than the limit", nest(maxFastDepth + 1), no},
		{"deeper than encoding/json's limit", nest(10002), no},
		{"deep objects", `{"a":` + strings.Repeat(`{"b":`, 100) + `1` + strings.Repeat(`}`, 100) + `,"sid":"SMx"}`, no},
		{"unclosed deep arrays", `{"a":` + strings.Repeat("[", 1000), no},
		// Not an object at the top.
		{"null", `null`, no},
		{"string", `"SMx"`, no},
		{"number", `1`, no},
		{"true", `true`, no},
		{"array", `["SMx"]`, no},
		{"empty array", `[]`, no},
	}...)

	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, ok := decodeCreated([]byte(tt.body))
			if got := (result{ok, m.Sid, m.Status}); got != tt.want {
				t.Errorf("decodeCreated(%q) = %+v, want %+v", tt.body, got, tt.want)
			}
			want, err := jsonDecode([]byte(tt.body))
			if ok && (err != nil || want != m) {
				t.Errorf("decodeCreated(%q) = %+v, but encoding/json gives %+v, %v", tt.body, m, want, err)
			}
			// Whatever decodeCreated says, the read path gives encoding/json's result and error.
			buf := make([]byte, 0, 16)
			got, gerr := readCreated(strings.NewReader(tt.body), &buf, maxFastBody)
			if got != want || fmt.Sprint(gerr) != fmt.Sprint(err) {
				t.Errorf("readCreated(%q) = %+v, %v; encoding/json gives %+v, %v", tt.body, got, gerr, want, err)
			}
		})
	}
}

// errBoom is the read error of TestReadCreated's failing readers.
var errBoom = errors.New("boom")

// TestReadCreated: readCreated gives json.NewDecoder(r).Decode's result and error for any
// reader (one that yields a byte at a time, or data with its EOF, or fails part way), whether
// the body fits in limit or not, and its result never shares the buffer it reuses.
func TestReadCreated(t *testing.T) {
	emu := emulatorAnswer(t, "123456", false)
	bodies := []string{
		string(emu),
		twilioMessageJSON,
		twilioMessageJSON + strings.Repeat(" ", 100) + "trailer",
		`{"sid":"SMx","status":"queued"}`,
		`{"sid":"SMx","status":null}`,
		`{"SID":"SMx","status":"queued"}`,
		`{"sid":42,"status":"queued"}`,
		`{"sid":"SM\u0030","status":"queued","x":[1,2,{"y":"z"}]}`,
		`{"sid":"SMx","a":[1,]}`,
		`["SMx"]`,
		`null`,
		`  `,
		``,
		`{"sid":"SMx"`,
		`{"sid":"SMx","pad":"` + strings.Repeat("x", 5000) + `","status":"queued"}`,
		nest(maxFastDepth + 1),
	}
	readers := map[string]func(string) io.Reader{
		"plain":     func(s string) io.Reader { return strings.NewReader(s) },
		"one byte":  func(s string) io.Reader { return iotest.OneByteReader(strings.NewReader(s)) },
		"data+EOF":  func(s string) io.Reader { return iotest.DataErrReader(strings.NewReader(s)) },
		"half+fail": func(s string) io.Reader { return io.MultiReader(strings.NewReader(s[:len(s)/2]), errReader{errBoom}) },
		"all+fail":  func(s string) io.Reader { return io.MultiReader(strings.NewReader(s), errReader{errBoom}) },
	}
	for _, body := range bodies {
		for rname, reader := range readers {
			var want createdMessage
			werr := json.NewDecoder(reader(body)).Decode(&want)
			for _, limit := range []int{maxFastBody, len(body), len(body) / 2, 7, 1, 0} {
				buf := make([]byte, 0, 4)
				got, err := readCreated(reader(body), &buf, limit)
				if got != want || fmt.Sprint(err) != fmt.Sprint(werr) || errors.Is(err, errBoom) != errors.Is(werr, errBoom) {
					t.Errorf("%s reader, limit %d, body %.80q: readCreated = %+v, %v; encoding/json gives %+v, %v",
						rname, limit, body, got, err, want, werr)
				}
				if cap(buf) > max(limit, 4) {
					t.Errorf("limit %d: the buffer grew to %d bytes", limit, cap(buf))
				}
				buf = buf[:cap(buf)]
				for i := range buf {
					buf[i] = '#'
				}
				if got != want {
					t.Errorf("%s reader, limit %d: the result %+v shares the buffer", rname, limit, got)
				}
			}
		}
	}
}

// FuzzDecodeCreated: whenever decodeCreated is sure of an answer, encoding/json's Decoder
// decodes the same bytes into a createdMessage without error and to the same SID and status;
// and readCreated, fast path or not, gives the decoder's result and error whatever its limit.
//
// Seeds are here (f.Add); failures the fuzzer finds go to testdata/fuzz/FuzzDecodeCreated.
// Explore with `go test -run '^$' -fuzz '^FuzzDecodeCreated$' -fuzztime 60s ./connector/twilio`.
func FuzzDecodeCreated(f *testing.F) {
	for _, b := range [][]byte{
		emulatorAnswer(f, "123456", false),
		emulatorAnswer(f, `<&> "é" \ `+"\u2028\x01", true),
		[]byte(twilioMessageJSON),
	} {
		f.Add(b)
	}
	for _, s := range []string{
		`{"sid":"SMx","status":"queued"}`, `{}`, ` {"sid":"SMx"} trailer`, `{"sid":"SMa"}{"sid":"SMb"}`,
		`{"sid":"SMa","sid":"SMb"}`, `{"sid":null}`, `{"sid":42}`, `{"SID":"SMx"}`, `{"ſid":"SMx"}`, `{"\u0073id":"x"}`,
		`{"sid":"SM\u0030"}`, "{\"sid\":\"SM\xff\"}", `{"n":[0,-0,1.5e-10,1E+2,-12],"sid":"x"}`, `{"n":01}`, `{"n":1.}`, `{"n":-}`,
		`{"a":{"b":[true,false,null,{}]},"sid":"x"}`, `{"a":tru}`, `{"a":"\u12g4"}`, `{"a":"\q"}`, "{\"a\":\"\t\"}",
		`{"sid":"x",}`, `{"sid":"x"`, `{"a":[1,]}`, nest(maxFastDepth), nest(maxFastDepth + 1), `[]`, `null`, `"x"`, ``, "\f{}",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		want, werr := jsonDecode(b)
		if m, ok := decodeCreated(b); ok && (werr != nil || m != want) {
			t.Fatalf("decodeCreated(%q) = %+v, but encoding/json gives %+v, %v", b, m, want, werr)
		}
		for _, limit := range []int{maxFastBody, len(b) / 2} {
			var buf []byte
			got, err := readCreated(bytes.NewReader(b), &buf, limit)
			if got != want || fmt.Sprint(err) != fmt.Sprint(werr) {
				t.Fatalf("limit %d: readCreated(%q) = %+v, %v; encoding/json gives %+v, %v", limit, b, got, err, want, werr)
			}
		}
	})
}

// BenchmarkDecodeCreated compares, on the emulator's answer to a Send (a message resource as
// Twilio's), decodeCreated alone, readCreated (reading the body into a reused buffer, then
// decodeCreated) and what the connector did before: encoding/json's Decoder over the body.
func BenchmarkDecodeCreated(b *testing.B) {
	body := emulatorAnswer(b, "123456", false)
	want, err := jsonDecode(body)
	if err != nil || want.Sid == "" {
		b.Fatalf("the emulator's answer %s decodes to %+v, %v", body, want, err)
	}
	b.Run("decodeCreated", func(b *testing.B) {
		b.SetBytes(int64(len(body)))
		b.ReportAllocs()
		for b.Loop() {
			if m, ok := decodeCreated(body); !ok || m != want {
				b.Fatal(m, ok)
			}
		}
	})
	b.Run("readCreated", func(b *testing.B) {
		b.SetBytes(int64(len(body)))
		b.ReportAllocs()
		buf := make([]byte, 0, bodyBufSize)
		r := bytes.NewReader(body)
		for b.Loop() {
			r.Reset(body)
			if m, err := readCreated(r, &buf, maxFastBody); err != nil || m != want {
				b.Fatal(m, err)
			}
		}
	})
	b.Run("encoding-json", func(b *testing.B) {
		b.SetBytes(int64(len(body)))
		b.ReportAllocs()
		r := bytes.NewReader(body)
		for b.Loop() {
			r.Reset(body)
			var m createdMessage
			if err := json.NewDecoder(r).Decode(&m); err != nil || m != want {
				b.Fatal(m, err)
			}
		}
	})
}
