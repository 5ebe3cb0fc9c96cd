package console

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/sms-connector/sms-connector/connector"
)

// TestMain fails the package's tests if a goroutine (a blocked Send) outlives them.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// reID is the shape of a message id.
var reID = regexp.MustCompile(`^console-[0-9a-f]{32}$`)

// testConfig is a valid configuration with a Generic, a SignIn and a French SignIn template.
const testConfig = `{"templates":[
	{"usageType":"Generic","content":"Your code is {{code}}"},
	{"usageType":"SignIn","content":"Sign in to {{app.name}} with {{code}}"},
	{"usageType":"SignIn","content":"Connexion : {{code}} ✓","locale":"fr"}
],"senderName":"Acme"}`

// decodeLines parses every line of out as an Entry, failing on anything else.
func decodeLines(t *testing.T, out []byte) []Entry {
	t.Helper()
	var es []Entry
	for line := range bytes.Lines(out) {
		if !bytes.HasSuffix(line, []byte("\n")) {
			t.Fatalf("line %q does not end with a newline", line)
		}
		var e Entry
		dec := json.NewDecoder(bytes.NewReader(line))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&e); err != nil {
			t.Fatalf("line %q is not an Entry: %v", line, err)
		}
		es = append(es, e)
	}
	return es
}

func TestSendWritesOneEntryPerMessage(t *testing.T) {
	tests := []struct {
		name     string
		msg      connector.Message
		want     Entry // Time and ID are checked apart
		wantLine []string
	}{
		{
			name: "exact usage type with a variable",
			msg: connector.Message{To: "+14155550123", UsageType: connector.UsageSignIn, Config: json.RawMessage(testConfig),
				Payload: connector.Payload{Code: "123456", Variables: map[string]any{"app": map[string]any{"name": "Acme"}}}},
			want: Entry{To: "+14155550123", Sender: "Acme", UsageType: connector.UsageSignIn, Body: "Sign in to Acme with 123456",
				Segments: 1, Encoding: connector.EncodingGSM7},
			wantLine: []string{`"locale":""`, `"sender":"Acme"`, `"segments":1`, `"encoding":"GSM-7"`},
		},
		{
			name: "locale selects the French template, UCS-2",
			msg: connector.Message{To: "+33612345678", UsageType: connector.UsageSignIn, Config: json.RawMessage(testConfig),
				Payload: connector.Payload{Code: "654321", Locale: "fr-CA"}},
			want: Entry{To: "+33612345678", Sender: "Acme", UsageType: connector.UsageSignIn, Locale: "fr-CA",
				Body: "Connexion : 654321 ✓", Segments: 1, Encoding: connector.EncodingUCS2},
			wantLine: []string{`"locale":"fr-CA"`, `"encoding":"UCS-2"`, `"body":"Connexion : 654321 ✓"`},
		},
		{
			name: "Generic fallback, no sender name, HTML characters kept readable",
			msg: connector.Message{To: "+14155550123", UsageType: connector.UsageRegister,
				Config:  json.RawMessage(`{"templates":[{"usageType":"Generic","content":"<b>{{code}}</b> & more"}]}`),
				Payload: connector.Payload{Code: "111111"}},
			want: Entry{To: "+14155550123", UsageType: connector.UsageRegister, Body: "<b>111111</b> & more",
				Segments: 1, Encoding: connector.EncodingGSM7},
			wantLine: []string{`"body":"<b>111111</b> & more"`},
		},
		{
			name: "no sender name, two segments",
			msg: connector.Message{To: "+14155550123", UsageType: connector.UsageGeneric,
				Config:  json.RawMessage(`{"templates":[{"usageType":"Generic","content":"{{code}} ` + strings.Repeat("x", 160) + `"}]}`),
				Payload: connector.Payload{Code: "222222"}},
			want: Entry{To: "+14155550123", UsageType: connector.UsageGeneric, Body: "222222 " + strings.Repeat("x", 160),
				Segments: 2, Encoding: connector.EncodingGSM7},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out bytes.Buffer
			c := New(Options{Writer: &out})
			r, err := c.Send(t.Context(), &tt.msg)
			if err != nil {
				t.Fatalf("Send: %v", err)
			}
			for _, s := range tt.wantLine {
				if !strings.Contains(out.String(), s) {
					t.Errorf("line %q does not contain %s", out.String(), s)
				}
			}
			if tt.want.Sender == "" && strings.Contains(out.String(), `"sender"`) {
				t.Errorf("line %q has a sender though none was configured", out.String())
			}
			es := decodeLines(t, out.Bytes())
			if len(es) != 1 {
				t.Fatalf("wrote %d lines, want 1: %q", len(es), out.String())
			}
			e := es[0]
			if !reID.MatchString(e.ID) {
				t.Errorf("id %q is not console- and 32 hex digits", e.ID)
			}
			if e.Time.IsZero() || e.Time.Location() != time.UTC {
				t.Errorf("time %v is not a UTC time", e.Time)
			}
			got := e
			got.ID, got.Time = "", time.Time{}
			if got != tt.want {
				t.Errorf("entry = %+v, want %+v", got, tt.want)
			}
			wantReceipt := connector.Receipt{MessageID: e.ID, Status: Status, Segments: e.Segments, Encoding: e.Encoding,
				To: tt.msg.To, Sender: tt.want.Sender}
			if *r != wantReceipt {
				t.Errorf("receipt = %+v, want %+v", *r, wantReceipt)
			}
		})
	}
}

func TestSendFailures(t *testing.T) {
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	expired, cancelExpired := context.WithDeadline(context.Background(), time.Unix(0, 0))
	defer cancelExpired()
	long := `{"templates":[{"usageType":"Generic","content":"{{code}} {{pad}}"}]}`
	msg := func(cfg string) *connector.Message {
		return &connector.Message{To: "+14155550123", UsageType: connector.UsageSignIn,
			Payload: connector.Payload{Code: "123456"}, Config: json.RawMessage(cfg)}
	}
	tooLong := msg(long)
	tooLong.Payload.Variables = map[string]any{"pad": strings.Repeat("é", MaxBodyLength)}
	astral := msg(long) // 6 + 1 + 797*2 = 1601 UTF-16 units, 804 characters
	astral.Payload.Variables = map[string]any{"pad": strings.Repeat("😀", 797)}
	tests := []struct {
		name       string
		ctx        context.Context
		msg        *connector.Message
		want       connector.Reason
		wantFields []string
	}{
		{"nil message", t.Context(), nil, connector.ReasonInvalidRequest, nil},
		{"cancelled context", cancelled, msg(testConfig), connector.ReasonCancelled, nil},
		{"expired deadline", expired, msg(testConfig), connector.ReasonProviderTimeout, nil},
		{"no config", t.Context(), msg(""), connector.ReasonConfigMissing, nil},
		{"blank config", t.Context(), msg(" \n "), connector.ReasonConfigMissing, nil},
		{"null config", t.Context(), msg("null"), connector.ReasonConfigMissing, nil},
		{"config not an object", t.Context(), msg("[]"), connector.ReasonInvalidConfig, []string{""}},
		{"several problems", t.Context(), msg(`{"templates":[{"usageType":"Nope","content":"no code"}],"extra":1}`),
			connector.ReasonInvalidConfig, []string{"templates[0].usageType", "templates[0].content", "extra"}},
		{"no template for the usage type", t.Context(), msg(`{"templates":[{"usageType":"Register","content":"{{code}}"}]}`),
			connector.ReasonTemplateNotFound, nil},
		{"body over the limit", t.Context(), tooLong, connector.ReasonMessageTooLong, nil},
		{"body over the limit in UTF-16 units", t.Context(), astral, connector.ReasonMessageTooLong, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out bytes.Buffer
			r, err := New(Options{Writer: &out}).Send(tt.ctx, tt.msg)
			var ce *connector.Error
			if !errors.As(err, &ce) {
				t.Fatalf("Send = %+v, %v; want a *connector.Error", r, err)
			}
			if ce.Reason != tt.want {
				t.Errorf("reason = %s (%v), want %s", ce.Reason, err, tt.want)
			}
			if got := fieldsOf(ce.Violations); !slices.Equal(got, tt.wantFields) {
				t.Errorf("violations of %q, want %q", got, tt.wantFields)
			}
			if out.Len() > 0 {
				t.Errorf("a failed Send wrote %q", out.String())
			}
		})
	}
}

// fieldsOf returns the fields of vs, nil for none.
func fieldsOf(vs []connector.Violation) []string {
	var out []string
	for _, v := range vs {
		out = append(out, v.Field)
	}
	return out
}

func TestParseConfig(t *testing.T) {
	const generic = `{"usageType":"Generic","content":"Your code is {{code}}"}`
	tests := []struct {
		name       string
		cfg        string
		wantFields []string // nil: valid
	}{
		{"default config", string(DefaultConfig()), nil},
		{"one Generic template", `{"templates":[` + generic + `]}`, nil},
		{"no Generic template", `{"templates":[{"usageType":"SignIn","content":"{{ code }}"}]}`, nil},
		{"localised templates", `{"templates":[` + generic + `,{"usageType":"Generic","content":"Code : {{code}}","locale":"fr-CA"}]}`, nil},
		{"empty optional fields", `{"templates":[{"usageType":"Generic","content":"{{code}}","locale":""}],"senderName":""}`, nil},
		{"sender name", `{"templates":[` + generic + `],"senderName":"Acme Inc."}`, nil},
		{"empty", ``, []string{""}},
		{"not JSON", `{"templates":`, []string{""}},
		{"array", `[]`, []string{""}},
		{"null", `null`, []string{""}},
		{"no templates field", `{}`, []string{"templates"}},
		{"empty template list", `{"templates":[]}`, []string{"templates"}},
		{"templates not an array", `{"templates":"Generic"}`, []string{"templates"}},
		{"template not an object", `{"templates":["{{code}}"]}`, []string{"templates[0]"}},
		{"template fields missing", `{"templates":[{}]}`, []string{"templates[0].usageType", "templates[0].content"}},
		{"template fields of the wrong type", `{"templates":[{"usageType":1,"content":null,"locale":true}]}`,
			[]string{"templates[0].usageType", "templates[0].content", "templates[0].locale"}},
		{"unknown usage type", `{"templates":[{"usageType":"signin","content":"{{code}}"}]}`, []string{"templates[0].usageType"}},
		{"content without code", `{"templates":[{"usageType":"Generic","content":"Your code is {code}"}]}`, []string{"templates[0].content"}},
		{"blank content", `{"templates":[{"usageType":"Generic","content":"  "}]}`, []string{"templates[0].content"}},
		{"content too long", `{"templates":[{"usageType":"Generic","content":"{{code}}` + strings.Repeat("a", MaxBodyLength) + `"}]}`,
			[]string{"templates[0].content"}},
		{"malformed locale", `{"templates":[{"usageType":"Generic","content":"{{code}}","locale":"en_US"}]}`, []string{"templates[0].locale"}},
		{"unknown template field", `{"templates":[{"usageType":"Generic","content":"{{code}}","lang":"en"}]}`, []string{"templates[0].lang"}},
		{"duplicate usage type and locale", `{"templates":[` + generic + `,{"usageType":"Generic","content":"again {{code}}"}]}`, []string{"templates[1]"}},
		{"duplicate locale, other case", `{"templates":[` + generic + `,{"usageType":"SignIn","content":"{{code}}","locale":"pt-BR"},{"usageType":"SignIn","content":"{{code}}","locale":"pt-br"}]}`,
			[]string{"templates[2]"}},
		{"localised templates only", `{"templates":[{"usageType":"SignIn","content":"{{code}}","locale":"de"},{"usageType":"Generic","content":"{{code}}","locale":"es"}]}`,
			[]string{"templates", "templates"}},
		{"sender name not a string", `{"templates":[` + generic + `],"senderName":["Acme"]}`, []string{"senderName"}},
		{"sender name too long", `{"templates":[` + generic + `],"senderName":"` + strings.Repeat("é", MaxSenderNameLength+1) + `"}`, []string{"senderName"}},
		{"sender name with a line break", `{"templates":[` + generic + `],"senderName":"Acme\nfake line"}`, []string{"senderName"}},
		{"unknown fields, sorted", `{"templates":[` + generic + `],"zeta":1,"alpha":2}`, []string{"alpha", "zeta"}},
		{"every problem at once", `{"templates":[{"usageType":"Nope","content":"x"}],"senderName":7,"x":0}`,
			[]string{"templates[0].usageType", "templates[0].content", "senderName", "x"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, vs := ParseConfig(json.RawMessage(tt.cfg))
			if got := fieldsOf(vs); !slices.Equal(got, tt.wantFields) {
				t.Fatalf("violations of %q, want %q: %+v", got, tt.wantFields, vs)
			}
			if (cfg == nil) != (tt.wantFields != nil) {
				t.Errorf("config = %+v with violations %+v", cfg, vs)
			}
			for _, v := range vs {
				if v.Description == "" {
					t.Errorf("violation of %q has no description", v.Field)
				}
			}
		})
	}
}

func TestDefaultConfigServesEveryUsageType(t *testing.T) {
	var out bytes.Buffer
	c := New(Options{Writer: &out})
	md, err := c.Metadata(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	var fromMetadata map[string]any
	if err := json.Unmarshal(DefaultConfig(), &fromMetadata); err != nil {
		t.Fatal(err)
	}
	tmpl, _ := json.Marshal(md.ConfigTemplate)
	if def, _ := json.Marshal(fromMetadata); !bytes.Equal(tmpl, def) {
		t.Errorf("Metadata.ConfigTemplate %s differs from DefaultConfig %s", tmpl, def)
	}
	for _, u := range connector.UsageTypes() {
		t.Run(string(u), func(t *testing.T) {
			out.Reset()
			if _, err := c.Send(t.Context(), &connector.Message{To: "+14155550123", UsageType: u,
				Payload: connector.Payload{Code: "123456"}, Config: DefaultConfig()}); err != nil {
				t.Fatal(err)
			}
			e := decodeLines(t, out.Bytes())[0]
			var want string
			for _, d := range defaultTemplates {
				if d.UsageType == u {
					want = strings.ReplaceAll(d.Content, "{{code}}", "123456")
				}
			}
			if e.Body != want {
				t.Errorf("body = %q, want %q (the %s template)", e.Body, want, u)
			}
		})
	}
}

func TestMetadata(t *testing.T) {
	md, err := New(Options{}).Metadata(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if md.ID != ID || md.Version != Version || md.Readme != readme || !strings.HasPrefix(md.Logo, "data:image/svg+xml;base64,") {
		t.Errorf("metadata = id %q version %q logo %.30q", md.ID, md.Version, md.Logo)
	}
	for _, lang := range []string{"en", "fr"} {
		if md.Name[lang] == "" || md.Description[lang] == "" {
			t.Errorf("no %s name or description", lang)
		}
	}
	if !slices.Equal(md.UsageTypes, connector.UsageTypes()) {
		t.Errorf("usage types = %q", md.UsageTypes)
	}
	// The form, the schema and the parser describe the same fields.
	props := md.ConfigSchema["properties"].(map[string]any)
	var formKeys, schemaKeys []string
	for _, it := range md.FormItems {
		formKeys = append(formKeys, it.Key)
	}
	for k := range props {
		schemaKeys = append(schemaKeys, k)
	}
	slices.Sort(formKeys)
	slices.Sort(schemaKeys)
	known := slices.Sorted(slices.Values(knownFields))
	if !slices.Equal(formKeys, known) || !slices.Equal(schemaKeys, known) {
		t.Errorf("form keys %q, schema properties %q, parser fields %q: want the same", formKeys, schemaKeys, known)
	}
	// Each call returns a fresh value.
	md.Name["en"] = "changed"
	md.ConfigTemplate["templates"] = nil
	again, _ := New(Options{}).Metadata(t.Context())
	if again.Name["en"] == "changed" || again.ConfigTemplate["templates"] == nil {
		t.Error("Metadata returns shared values")
	}
}

// failingWriter writes n bytes of each call, then fails with err.
type failingWriter struct {
	n   int
	err error
}

func (w failingWriter) Write(p []byte) (int, error) { return min(w.n, len(p)), w.err }

func TestWriteFailures(t *testing.T) {
	boom := errors.New("disk full")
	tests := []struct {
		name string
		w    failingWriter
		want connector.Reason
	}{
		{"nothing written", failingWriter{0, boom}, connector.ReasonProviderUnavailable},
		{"part written", failingWriter{10, boom}, connector.ReasonProviderOutcomeUnknown},
		{"short write without an error", failingWriter{10, nil}, connector.ReasonProviderOutcomeUnknown},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := New(Options{Writer: tt.w}).Send(t.Context(), &connector.Message{To: "+14155550123",
				UsageType: connector.UsageGeneric, Payload: connector.Payload{Code: "1"}, Config: json.RawMessage(testConfig)})
			var ce *connector.Error
			if !errors.As(err, &ce) || ce.Reason != tt.want || ce.Provider != Provider {
				t.Fatalf("err = %v, want reason %s from %s", err, tt.want, Provider)
			}
			// Only "nothing was written" is safe to retry, so only it carries a delay (RetryInfo).
			if wantDelay := tt.want == connector.ReasonProviderUnavailable; (ce.RetryAfter > 0) != wantDelay {
				t.Errorf("RetryAfter = %v; want a delay: %v", ce.RetryAfter, wantDelay)
			}
			if tt.w.err != nil && !errors.Is(err, boom) {
				t.Errorf("err = %v does not wrap the writer's error", err)
			}
			if strings.Contains(ce.Message, "123456") {
				t.Errorf("message %q carries the code", ce.Message)
			}
		})
	}
}

// gateWriter blocks every Write until its gate is closed, and says when a Write has begun.
type gateWriter struct {
	began chan struct{} // receives once per Write that has begun
	gate  chan struct{}
	mu    sync.Mutex
	buf   bytes.Buffer
}

func (w *gateWriter) Write(p []byte) (int, error) {
	w.began <- struct{}{}
	<-w.gate
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.Write(p)
}

// askedContext says when Done is first asked for: Send asks only when it starts to wait for
// the write lock, so the test can cancel a Send that is waiting, not one that has not begun.
type askedContext struct {
	context.Context
	asked chan struct{}
	once  sync.Once
}

func (c *askedContext) Done() <-chan struct{} {
	c.once.Do(func() { close(c.asked) })
	return c.Context.Done()
}

func TestSendWaitingForTheWriterHonoursContext(t *testing.T) {
	w := &gateWriter{began: make(chan struct{}, 1), gate: make(chan struct{})}
	c := New(Options{Writer: w})
	msg := func(code string) *connector.Message {
		return &connector.Message{To: "+14155550123", UsageType: connector.UsageGeneric,
			Payload: connector.Payload{Code: code}, Config: json.RawMessage(testConfig)}
	}
	first := make(chan error, 1)
	go func() {
		_, err := c.Send(context.Background(), msg("111111"))
		first <- err
	}()
	<-w.began // the first Send holds the lock, blocked in Write

	parent, cancel := context.WithCancel(t.Context())
	ctx := &askedContext{Context: parent, asked: make(chan struct{})}
	second := make(chan error, 1)
	go func() {
		_, err := c.Send(ctx, msg("222222"))
		second <- err
	}()
	<-ctx.asked // the second Send is about to wait for the lock
	cancel()
	if err := <-second; connector.ReasonOf(err) != connector.ReasonCancelled {
		t.Errorf("Send waiting behind a blocked writer, then cancelled: err = %v, want CANCELLED", err)
	}

	close(w.gate)
	if err := <-first; err != nil {
		t.Fatalf("the blocked Send: %v", err)
	}
	es := decodeLines(t, w.buf.Bytes())
	if len(es) != 1 || es[0].Body != "Your code is 111111" {
		t.Errorf("wrote %+v, want only the first message", es)
	}
	// The lock was released: the connector is still usable.
	if _, err := c.Send(t.Context(), msg("333333")); err != nil {
		t.Errorf("Send after the writer unblocked: %v", err)
	}
}

// overlapWriter fails the test if two Writes overlap or a Write is not one whole line.
type overlapWriter struct {
	t      *testing.T
	active atomic.Bool
	mu     sync.Mutex
	buf    bytes.Buffer
}

func (w *overlapWriter) Write(p []byte) (int, error) {
	if !w.active.CompareAndSwap(false, true) {
		w.t.Error("two Writes overlap")
	}
	defer w.active.Store(false)
	if bytes.Count(p, []byte("\n")) != 1 || p[len(p)-1] != '\n' {
		w.t.Errorf("Write of %q is not one line", p)
	}
	for range 3 { // hand the processor to other writers, to provoke an overlap
		time.Sleep(0)
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.Write(p)
}

func TestConcurrentSendsWriteWholeLines(t *testing.T) {
	const n = 64
	w := &overlapWriter{t: t}
	c := New(Options{Writer: w})
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() {
			if _, err := c.Send(t.Context(), &connector.Message{To: "+14155550123", UsageType: connector.UsageSignIn,
				Payload: connector.Payload{Code: "123456", Locale: "fr"}, Config: json.RawMessage(testConfig)}); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if es := decodeLines(t, w.buf.Bytes()); len(es) != n {
		t.Errorf("wrote %d lines, want %d", len(es), n)
	}
}

func TestNewWritesToStderrByDefault(t *testing.T) {
	if c := New(Options{}); c.w != os.Stderr {
		t.Errorf("default writer = %v, want os.Stderr", c.w)
	}
}

func TestOpenFileAppends(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sms.jsonl")
	send := func(code string) {
		f, err := OpenFile(path)
		if err != nil {
			t.Fatal(err)
		}
		defer func() {
			if err := f.Close(); err != nil {
				t.Error(err)
			}
		}()
		if _, err := New(Options{Writer: f}).Send(t.Context(), &connector.Message{To: "+14155550123",
			UsageType: connector.UsageGeneric, Payload: connector.Payload{Code: code}, Config: json.RawMessage(testConfig)}); err != nil {
			t.Fatal(err)
		}
	}
	send("111111")
	send("222222")
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	es := decodeLines(t, b)
	if len(es) != 2 || es[0].Body != "Your code is 111111" || es[1].Body != "Your code is 222222" {
		t.Errorf("file holds %+v, want both messages in order", es)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if perm := fi.Mode().Perm(); perm&0o077 != 0 {
		t.Errorf("file mode %v lets others read the codes", perm)
	}
	if _, err := OpenFile(filepath.Join(t.TempDir(), "missing", "sms.jsonl")); err == nil {
		t.Error("OpenFile in a missing directory succeeded")
	}
}
