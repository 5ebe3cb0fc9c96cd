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

	twclient "github.com/twilio/twilio-go/client"
	openapi "github.com/twilio/twilio-go/rest/api/v2010"

	"github.com/sms-connector/sms-connector/connector"
	"github.com/sms-connector/sms-connector/connector/twilio/twiliotest"
)

// sentRequest is what a capture saw of one request.
type sentRequest struct {
	method, url string
	header      http.Header
	body        string
}

// capture is a RoundTripper that records each request and answers twilioMessageJSON.
type capture struct {
	mu   sync.Mutex
	reqs []sentRequest
}

func (c *capture) RoundTrip(req *http.Request) (*http.Response, error) {
	var body []byte
	if req.Body != nil {
		body, _ = io.ReadAll(req.Body)
		_ = req.Body.Close()
	}
	c.mu.Lock()
	c.reqs = append(c.reqs, sentRequest{req.Method, req.URL.String(), req.Header.Clone(), string(body)})
	c.mu.Unlock()
	return cannedTransport{}.RoundTrip(req)
}

// last returns the last request recorded.
func (c *capture) last(t *testing.T) sentRequest {
	t.Helper()
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.reqs) == 0 {
		t.Fatal("no request was sent")
	}
	return c.reqs[len(c.reqs)-1]
}

// TestSendRequestMatchesCreateMessage: Send's request (method, URL, every header, form body)
// is byte for byte the one twilio-go's CreateMessage sends for the same message and client.
func TestSendRequestMatchesCreateMessage(t *testing.T) {
	tests := []struct {
		name   string
		mutate []func(map[string]any)
	}{
		{"messaging service", nil},
		{"from number", []func(map[string]any){withFrom("+15005550006")}},
		{"optional fields", []func(map[string]any){withFrom("Acme"), func(m map[string]any) {
			m["validityPeriod"] = 600
			m["disableRiskCheck"] = true
		}}},
		{"API key", []func(map[string]any){func(m map[string]any) {
			delete(m, "authToken")
			m["apiKeySID"], m["apiKeySecret"] = emuKeySID, emuKeySecret
		}}},
		{"regional host", []func(map[string]any){func(m map[string]any) { m["host"] = "api.dublin.ie1.twilio.com" }}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfgJSON := emuConfig(t, tt.mutate...)
			msg := message(cfgJSON)
			msg.Payload.Code = "a&b=c+d é" // characters the form encoding must escape

			got := &capture{}
			c, err := New(Options{Transport: got})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := c.Send(context.Background(), msg); err != nil {
				t.Fatal(err)
			}

			// The same message through twilio-go's CreateMessage, as the connector used to send it.
			pc, vs := (&Connector{}).prepare(cfgJSON)
			if len(vs) > 0 {
				t.Fatal(vs)
			}
			rendered, err := pc.templates.Render(msg.UsageType, msg.Payload)
			if err != nil {
				t.Fatal(err)
			}
			params := &openapi.CreateMessageParams{}
			params.SetTo(msg.To).SetBody(rendered.Body)
			if pc.cfg.FromMessagingServiceSID != "" {
				params.SetMessagingServiceSid(pc.cfg.FromMessagingServiceSID)
			} else {
				params.SetFrom(pc.cfg.From)
			}
			if pc.cfg.ValidityPeriod > 0 {
				params.SetValidityPeriod(pc.cfg.ValidityPeriod)
			}
			if pc.cfg.DisableRiskCheck {
				params.SetRiskCheck("disable")
			}
			want := &capture{}
			tc := &twclient.Client{
				Credentials:         pc.credentials,
				HTTPClient:          &http.Client{Transport: want, CheckRedirect: noRedirect},
				UserAgentExtensions: []string{"sms-connector-twilio/" + Version},
			}
			tc.SetAccountSid(pc.cfg.AccountSID)
			api := openapi.NewApiService(&twclient.RequestHandler{Client: tc, Edge: pc.edge, Region: pc.region})
			if _, err := api.CreateMessage(params); err != nil {
				t.Fatal(err)
			}

			g, w := got.last(t), want.last(t)
			if g.method != w.method || g.url != w.url {
				t.Errorf("request %s %s, CreateMessage sends %s %s", g.method, g.url, w.method, w.url)
			}
			if g.body != w.body {
				t.Errorf("form %q, CreateMessage sends %q", g.body, w.body)
			}
			if len(g.header) != len(w.header) {
				t.Errorf("headers %v, CreateMessage sends %v", g.header, w.header)
			}
			for k, wv := range w.header {
				if gv := g.header[k]; strings.Join(gv, "\n") != strings.Join(wv, "\n") {
					t.Errorf("header %s: %q, CreateMessage sends %q", k, gv, wv)
				}
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

// TestSendDecodesResponse: how Send reads a 2xx answer. Only the SID and the status are read;
// an answer that is not a JSON message, or has no SID, is PROVIDER_INVALID_RESPONSE and never
// retried (Twilio may have created the message); either way the body is read to its end and
// closed, so the connection goes back to the pool.
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
		{"unused field of another type", http.StatusCreated, `{"sid":"` + sid + `","status":"queued","num_segments":1}`, "", "queued"},
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
