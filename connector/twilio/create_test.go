package twilio

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/sms-connector/sms-connector/connector"
	"github.com/sms-connector/sms-connector/connector/twilio/twiliotest"
)

// TestSendFormFields: for each shape of configuration, the emulator receives (through twilio-go's
// CreateMessage over real HTTP) exactly the fields the configuration asks for, with the body
// escaped and decoded intact, authenticated with the configured credentials.
func TestSendFormFields(t *testing.T) {
	const code = "a&b=c+d é%20" // characters the form encoding must escape
	tests := []struct {
		name   string
		mutate []func(map[string]any)
		want   twiliotest.Message // the fields compared: From, MessagingServiceSid, ValidityPeriod, RiskCheck
	}{
		{"messaging service", nil, twiliotest.Message{MessagingServiceSid: emuService}},
		{"from number", []func(map[string]any){withFrom(twiliotest.FromValid)}, twiliotest.Message{From: twiliotest.FromValid}},
		{"alphanumeric sender, validity period, risk check off", []func(map[string]any){withFrom("Acme"), func(m map[string]any) {
			m["validityPeriod"] = 600
			m["disableRiskCheck"] = true
		}}, twiliotest.Message{From: "Acme", ValidityPeriod: 600, RiskCheck: "disable"}},
		{"API key", []func(map[string]any){func(m map[string]any) {
			delete(m, "authToken")
			m["apiKeySID"], m["apiKeySecret"] = emuKeySID, emuKeySecret
		}}, twiliotest.Message{MessagingServiceSid: emuService}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv, c := emulator(t)
			msg := message(emuConfig(t, tt.mutate...))
			msg.Payload.Code = code
			r, err := c.Send(context.Background(), msg)
			if err != nil {
				t.Fatal(err)
			}
			msgs := srv.Messages()
			if len(msgs) != 1 {
				t.Fatalf("emulator has %d messages, want 1", len(msgs))
			}
			got := msgs[0]
			if got.Sid != r.MessageID || got.AccountSid != testAccount || got.To != recipient || got.Body != "Sign in with "+code+" at Acme" {
				t.Errorf("emulator got %+v, receipt %+v", got, r)
			}
			if got.From != tt.want.From || got.MessagingServiceSid != tt.want.MessagingServiceSid ||
				got.ValidityPeriod != tt.want.ValidityPeriod || got.RiskCheck != tt.want.RiskCheck {
				t.Errorf("emulator got From %q, MessagingServiceSid %q, ValidityPeriod %d, RiskCheck %q; want %+v",
					got.From, got.MessagingServiceSid, got.ValidityPeriod, got.RiskCheck, tt.want)
			}
		})
	}
}

// trackedBody is a response body that records whether it was read to its end and closed, and,
// like a real one, fails reads after Close.
type trackedBody struct {
	r           io.Reader
	eof, closed bool
}

func (b *trackedBody) Read(p []byte) (int, error) {
	if b.closed {
		return 0, errors.New("http: read on closed response body")
	}
	n, err := b.r.Read(p)
	if err == io.EOF {
		b.eof = true
	}
	return n, err
}

func (b *trackedBody) Close() error { b.closed = true; return nil }

// answer is a RoundTripper that answers every request with status and body.
type answer struct {
	status int
	body   string

	mu     sync.Mutex
	n      int            // requests received
	bodies []*trackedBody // the bodies it answered
}

func (a *answer) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.Body != nil {
		_, _ = io.Copy(io.Discard, req.Body)
		_ = req.Body.Close()
	}
	b := &trackedBody{r: strings.NewReader(a.body)}
	a.mu.Lock()
	a.n++
	a.bodies = append(a.bodies, b)
	a.mu.Unlock()
	return &http.Response{
		StatusCode:    a.status,
		Header:        http.Header{"Content-Type": {"application/json"}},
		Body:          b,
		ContentLength: int64(len(a.body)),
		Request:       req,
	}, nil
}

// TestSendDecodesResponse: how Send reads a 2xx answer, which twilio-go decodes into its message
// resource. An answer that is not a JSON message (a field of the wrong type included), or has no
// SID, is PROVIDER_INVALID_RESPONSE and never retried (Twilio may have created the message);
// either way the body is read to its end and closed, so the connection goes back to the pool.
func TestSendDecodesResponse(t *testing.T) {
	const sid = "SM0123456789abcdef0123456789abcdef"
	tests := []struct {
		name   string
		status int
		body   string
		reason connector.Reason // "": the Send succeeds
		want   string           // the receipt's Status, or a text of the error's Message
	}{
		{"full resource", http.StatusCreated, twilioMessageJSON, "", "accepted"},
		{"200 OK", http.StatusOK, `{"sid":"` + sid + `","status":"queued"}`, "", "queued"},
		{"status null", http.StatusCreated, `{"sid":"` + sid + `","status":null}`, "", ""},
		{"no status", http.StatusCreated, `{"sid":"` + sid + `"}`, "", ""},
		{"field of another type", http.StatusCreated, `{"sid":"` + sid + `","status":"queued","num_segments":1}`, connector.ReasonProviderInvalidResponse, "HTTP 201 with a body that is not a message"},
		{"data after the message", http.StatusCreated, `{"sid":"` + sid + `","status":"queued"}` + "\n<!-- trailer -->", "", "queued"},
		{"HTML", http.StatusOK, "<html><body>OK</body></html>", connector.ReasonProviderInvalidResponse, "HTTP 200 with a body that is not a message"},
		{"empty body", http.StatusCreated, "", connector.ReasonProviderInvalidResponse, "HTTP 201 with a body that is not a message"},
		{"truncated JSON", http.StatusCreated, `{"sid":"` + sid, connector.ReasonProviderInvalidResponse, "HTTP 201 with a body that is not a message"},
		{"JSON array", http.StatusCreated, `["` + sid + `"]`, connector.ReasonProviderInvalidResponse, "HTTP 201 with a body that is not a message"},
		{"sid not a string", http.StatusCreated, `{"sid":42,"status":"queued"}`, connector.ReasonProviderInvalidResponse, "HTTP 201 with a body that is not a message"},
		{"status not a string", http.StatusCreated, `{"sid":"` + sid + `","status":7}`, connector.ReasonProviderInvalidResponse, "HTTP 201 with a body that is not a message"},
		{"no sid", http.StatusCreated, `{"status":"queued"}`, connector.ReasonProviderInvalidResponse, "HTTP 201 without a message SID"},
		{"sid null", http.StatusCreated, `{"sid":null,"status":"queued"}`, connector.ReasonProviderInvalidResponse, "HTTP 201 without a message SID"},
		{"empty sid", http.StatusCreated, `{"sid":"","status":"queued"}`, connector.ReasonProviderInvalidResponse, "HTTP 201 without a message SID"},
		{"JSON null", http.StatusCreated, `null`, connector.ReasonProviderInvalidResponse, "HTTP 201 without a message SID"},
		{"empty object", http.StatusAccepted, `{}`, connector.ReasonProviderInvalidResponse, "HTTP 202 without a message SID"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := &answer{status: tt.status, body: tt.body}
			c, err := New(Options{Transport: a})
			if err != nil {
				t.Fatal(err)
			}
			c.sleep = instantSleep
			r, err := c.Send(context.Background(), message(emuConfig(t)))
			if tt.reason == "" {
				if err != nil {
					t.Fatalf("Send: %v", err)
				}
				if r.MessageID != sid || r.Status != tt.want {
					t.Errorf("receipt %+v, want MessageID %s, Status %q", r, sid, tt.want)
				}
			} else {
				if err == nil {
					t.Fatalf("Send succeeded: %+v", r)
				}
				t.Logf("%v", err)
				e := asError(t, err)
				if e.Reason != tt.reason || e.Provider != Provider || !strings.Contains(e.Message, tt.want) {
					t.Errorf("got %s/%s %q, want %s/twilio with %q", e.Reason, e.Provider, e.Message, tt.reason, tt.want)
				}
				if e.Err == nil || !strings.HasPrefix(e.Err.Error(), "twilio: create message: ") {
					t.Errorf("Err %v is not wrapped with context", e.Err)
				}
			}
			a.mu.Lock()
			defer a.mu.Unlock()
			if a.n != 1 {
				t.Errorf("%d requests, want 1 (an answer is never retried)", a.n)
			}
			for _, b := range a.bodies {
				if !b.eof || !b.closed {
					t.Errorf("response body read to its end %v, closed %v; want both", b.eof, b.closed)
				}
			}
		})
	}
}

// TestSendDrainsLargeBody: a 2xx body larger than the message is still read to its end (up to
// the drain limit), so that a chatty proxy does not cost a connection per Send.
func TestSendDrainsLargeBody(t *testing.T) {
	body := `{"sid":"SM0123456789abcdef0123456789abcdef","status":"queued"}` + string(bytes.Repeat([]byte(" "), 32<<10))
	a := &answer{status: http.StatusCreated, body: body}
	c, err := New(Options{Transport: a})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Send(context.Background(), message(emuConfig(t))); err != nil {
		t.Fatal(err)
	}
	if b := a.bodies[0]; !b.eof || !b.closed {
		t.Errorf("response body read to its end %v, closed %v; want both", b.eof, b.closed)
	}
}

// TestSendReusesConnection: every answer, a created message or an error, leaves the connection
// to Twilio reusable, so sequential Sends make one connection in all.
func TestSendReusesConnection(t *testing.T) {
	var dials atomic.Int32
	tr := newDefaultTransport()
	dial := tr.DialContext
	tr.DialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
		dials.Add(1)
		return dial(ctx, network, addr)
	}
	defer tr.CloseIdleConnections()
	srv, c := emulatorWith(t, Options{Transport: tr, MaxAttempts: 1})
	cfg := emuConfig(t)
	for i := range 5 {
		if _, err := c.Send(context.Background(), message(cfg)); err != nil {
			t.Fatalf("send %d: %v", i, err)
		}
		msg := message(cfg)
		msg.To = twiliotest.ToInvalid
		if _, err := c.Send(context.Background(), msg); connector.ReasonOf(err) != connector.ReasonInvalidPhoneNumber {
			t.Fatalf("send %d to an invalid number: %v", i, err)
		}
		for _, f := range []twiliotest.Fault{
			{Kind: twiliotest.FaultServerErrorHTML},
			{Kind: twiliotest.FaultServerErrorJSON},
			{Kind: twiliotest.FaultTooManyRequests},
			{Kind: twiliotest.FaultRedirect},
		} {
			srv.InjectFault(f, 1)
			if _, err := c.Send(context.Background(), message(cfg)); err == nil {
				t.Fatalf("send %d with fault %v succeeded", i, f.Kind)
			}
		}
	}
	if n := dials.Load(); n != 1 {
		t.Errorf("%d connections for %d sequential Sends, want 1", n, srv.Requests())
	}
}
