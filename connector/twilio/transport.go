package twilio

import (
	"context"
	"io"
	"net/http"
	"net/url"
	"time"

	twclient "github.com/twilio/twilio-go/client"
)

// newDefaultTransport returns the tuned transport a Connector uses when Options.Transport is
// nil: a clone of http.DefaultTransport (proxy from the environment, HTTP/2, dial and TLS
// timeouts) that keeps enough idle connections to Twilio for concurrent sends: 256 per host,
// so that up to 256 concurrent sends reuse their connections instead of opening and closing
// one each (Go's default keeps 2).
func newDefaultTransport() *http.Transport {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.MaxIdleConns = 512
	t.MaxIdleConnsPerHost = 256
	t.IdleConnTimeout = 90 * time.Second
	t.TLSHandshakeTimeout = 10 * time.Second
	t.ResponseHeaderTimeout = 0 // bounded by the per-attempt context instead
	return t
}

// attemptClient is the twilio-go client of one attempt: its attemptTransport, and the
// http.Client, twilio-go Client and RequestHandler twilio-go needs around it. They live exactly
// as long as the attempt, so they are allocated together, once.
type attemptClient struct {
	transport  attemptTransport
	httpClient http.Client
	client     twclient.Client
	handler    twclient.RequestHandler
}

// newAttemptClient returns the client of an attempt bound to ctx, with pc's credentials and
// host. Its handler is built directly rather than with twilio.NewRestClientWithParams: that one
// builds ~60 API services per call and takes edge and region from the TWILIO_EDGE/TWILIO_REGION
// environment, where only the configuration's host may decide.
func (c *Connector) newAttemptClient(ctx context.Context, pc *prepared) *attemptClient {
	a := &attemptClient{transport: attemptTransport{base: c.transport, ctx: ctx, baseURL: c.baseURL}}
	a.httpClient.Transport = &a.transport
	a.httpClient.CheckRedirect = noRedirect
	a.client.Credentials = pc.credentials
	a.client.HTTPClient = &a.httpClient
	a.client.UserAgentExtensions = c.userAgent
	a.client.SetAccountSid(pc.cfg.AccountSID)
	a.handler = twclient.RequestHandler{Client: &a.client, Edge: pc.edge, Region: pc.region}
	return a
}

// attemptTransport is the RoundTripper of one attempt. twilio-go builds its requests with
// context.Background() and offers no way to pass a context, so this sends each request with the
// attempt's context instead: the RPC's deadline, the attempt timeout and cancellation then
// abort the HTTP call. It also rewrites scheme and host to Options.APIURL when one is set, and
// remembers the response, whose status and headers twilio-go does not report on errors.
//
// It is a small struct over the Connector's one shared base transport, made per attempt; it is
// used by one goroutine only (http.Client calls RoundTrip synchronously).
type attemptTransport struct {
	base    http.RoundTripper
	ctx     context.Context
	baseURL *url.URL // nil: leave the request's URL as twilio-go built it

	resp *http.Response // the last response received, if any
}

// RoundTrip sends a copy of req bound to the attempt's context. The copy is shallow
// (Request.WithContext), with its own URL when it rewrites it: nothing else of req is changed,
// so a deep Request.Clone would only copy headers and body fields for nothing.
func (t *attemptTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	r := req.WithContext(t.ctx)
	if t.baseURL != nil {
		u := *req.URL
		u.Scheme, u.Host = t.baseURL.Scheme, t.baseURL.Host
		r.URL = &u
		r.Host = ""
	}
	resp, err := t.base.RoundTrip(r)
	if resp != nil {
		t.resp = resp
	}
	return resp, err
}

// status returns the HTTP status of the last response, or 0 when none arrived.
func (t *attemptTransport) status() int {
	if t.resp == nil {
		return 0
	}
	return t.resp.StatusCode
}

// header returns the header named key of the last response, or "".
func (t *attemptTransport) header(key string) string {
	if t.resp == nil {
		return ""
	}
	return t.resp.Header.Get(key)
}

// finish drains and closes the last response's body: the body of an error answer, which
// twilio-go leaves open, or the message attempt decoded, which may have bytes left after the
// JSON value. Draining a little of it lets the connection go back to the pool.
func (t *attemptTransport) finish() {
	if t.resp == nil || t.resp.Body == nil {
		return
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(t.resp.Body, 64<<10))
	_ = t.resp.Body.Close()
}

// noRedirect stops http.Client from following redirects, as twilio-go's own default client
// does: a 3xx is returned as is (and then rejected for its missing message SID), and Basic auth
// is never replayed to another location.
func noRedirect(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
