package twilio

import (
	"context"
	"io"
	"net/http"
	"net/url"
	"time"
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

// attemptTransport is the RoundTripper of one Send. twilio-go builds its requests with
// context.Background() and offers no way to pass a context, so this clones each request with
// the attempt's context: the RPC's deadline, the attempt timeout and cancellation then abort the
// HTTP call. It also rewrites scheme and host to Options.APIURL when one is set, and remembers
// the response, whose status and headers twilio-go does not report on errors.
//
// It is a small struct over the Connector's one shared base transport, made per Send; it is
// used by one goroutine only (http.Client calls RoundTrip synchronously).
type attemptTransport struct {
	base    http.RoundTripper
	ctx     context.Context
	baseURL *url.URL // nil: leave the request's URL as twilio-go built it

	resp *http.Response // the last response received, if any
}

// RoundTrip sends a clone of req bound to the attempt's context.
func (t *attemptTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	r := req.Clone(t.ctx)
	if t.baseURL != nil {
		r.URL.Scheme = t.baseURL.Scheme
		r.URL.Host = t.baseURL.Host
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

// finish drains and closes the last response's body. twilio-go leaves the body of an error
// response open; draining a little of it lets the connection go back to the pool. Reading a
// body twilio-go already closed just fails, harmlessly.
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
