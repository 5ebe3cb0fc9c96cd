// Package twilio is the Twilio Programmable Messaging connector: it implements
// connector.SmsConnector by creating one Twilio Message per Send with twilio-go's
// CreateMessage.
//
// Its configuration is Logto's Twilio SMS connector configuration, extended (see Config and
// ParseConfig), so a Logto user can paste theirs. The connector does only Twilio's I/O and the
// mapping of Twilio's answers to connector.Error reasons; the template list's validation,
// template selection and rendering, phone-number normalisation and segment counting come from
// package connector, and the classification of transport failures from connector/httpvendor.
// A configuration is parsed and validated once; what Send needs of it is kept for the sends
// that follow.
//
// twilio-go takes no context and its base URL is a constant. Each attempt therefore gives
// twilio-go an http.Client whose httpvendor.Transport binds the request to the attempt's
// context (the caller's deadline and cancellation and Options.Timeout abort the HTTP call) and,
// when Options.APIURL is set, sends it there instead; every attempt shares the Connector's one
// underlying transport and so its pool of connections.
//
// Twilio has no idempotency key for message creation, so a retry is only safe when the failure
// proves Twilio never processed the request. Send retries exactly those failures, and nothing
// else: HTTP 429 / error 20429 (Twilio refused the request before processing it) and a
// connection that failed before the request was written (a failed dial). It waits with
// exponential backoff and full jitter, honours Retry-After, stays inside the caller's deadline
// and makes at most Options.MaxAttempts attempts. Ambiguous failures (a 5xx, a connection lost
// or a timeout after the request was written) are never retried: the SMS may exist, so they
// come back as PROVIDER_OUTCOME_UNKNOWN or PROVIDER_TIMEOUT for the caller to decide. This
// lives in the driver, not in a decorator, because only the driver can tell "never processed"
// from "outcome unknown": it sees the HTTP status, the vendor's code and the transport error.
package twilio

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strings"
	"time"

	twclient "github.com/twilio/twilio-go/client"
	openapi "github.com/twilio/twilio-go/rest/api/v2010"

	"github.com/sms-connector/sms-connector/connector"
	"github.com/sms-connector/sms-connector/connector/httpvendor"
)

// ID is the connector id, as Logto's: "twilio-short-message-service". Platforms key stored
// configurations by it, so it never changes.
const ID = "twilio-short-message-service"

// Version is the connector's own version, reported by Metadata and in the User-Agent.
const Version = "0.1.0"

// Provider is the name the connector's errors carry in connector.Error.Provider.
const Provider = "twilio"

// DefaultTimeout bounds one attempt at the Twilio API when Options.Timeout is zero.
const DefaultTimeout = 10 * time.Second

// Options configure a Connector. They belong to the operator; nothing in a per-request
// configuration can change them.
type Options struct {
	// APIURL overrides Twilio's base URL (scheme+host, e.g. "http://127.0.0.1:4010") for a proxy
	// or the emulator. Operator-only: a per-request config can only choose Twilio's own regional
	// hosts via its `host` field, which APIURL, when set, overrides.
	APIURL string
	// Timeout bounds one attempt at the Twilio API (default 10s); the RPC's context deadline
	// also applies, whichever is sooner.
	Timeout time.Duration
	// Transport is the base RoundTripper (default: one shared tuned *http.Transport clone with
	// MaxIdleConnsPerHost 256, IdleConnTimeout 90s). Never one per request.
	Transport http.RoundTripper
	// MaxAttempts bounds the attempts of one Send at creating the message: 0 means
	// DefaultMaxAttempts (3), 1 disables retries. Only failures that prove Twilio never
	// processed the request are retried (see the package documentation); each attempt is
	// bounded by Timeout, and all of them by the caller's deadline.
	MaxAttempts int
	// ConfigCacheSize bounds how many prepared configurations the connector keeps (see the
	// package documentation): 0 means connector.DefaultConfigCacheEntries (1024), a negative
	// value disables the cache, so every Send parses its configuration again.
	ConfigCacheSize int
	// MaxSegments refuses, with MESSAGE_TOO_LONG and before Twilio is called, a message whose
	// rendered body takes more SMS segments; 0 means no limit but MaxBodyLength. A binary
	// passes sdk.Runtime.MaxSegments.
	MaxSegments int
	// StatusCallbackURL, when set, is given to Twilio as every message's StatusCallback: Twilio
	// then POSTs the message's status changes there (package twiliostatus serves them). It is
	// an absolute http(s) URL; a binary passes --public-url + twiliostatus.Path.
	StatusCallbackURL string
}

// Connector sends SMS through Twilio. It is safe for concurrent use; make one per process and
// share it, so that every Send shares its connection pool.
type Connector struct {
	transport    http.RoundTripper
	ownTransport *http.Transport // set when New made the transport; Close releases it
	baseURL      *url.URL        // from Options.APIURL; nil for Twilio itself
	timeout      time.Duration
	userAgent    []string
	configs      *connector.ConfigCache[*prepared] // valid configurations, prepared once
	maxSegments  int                               // Options.MaxSegments
	callbackURL  string                            // Options.StatusCallbackURL

	// Retry policy (see retry.go). Tests replace backoffBase, randN and sleep to run without
	// real waits; nothing else changes them after New.
	maxAttempts int
	backoffBase time.Duration                                    // ceiling of the first retry's wait
	backoffMax  time.Duration                                    // largest ceiling of any wait
	randN       func(n int64) int64                              // uniform in [0, n), n > 0
	sleep       func(ctx context.Context, d time.Duration) error // waits d or until ctx ends
}

var _ connector.SmsConnector = (*Connector)(nil)

// New returns a Connector. It fails only when opts are invalid: an APIURL that is not an
// absolute http(s) URL of a host alone, a StatusCallbackURL that is not an absolute http(s)
// URL, a negative Timeout or a negative MaxAttempts.
func New(opts Options) (*Connector, error) {
	c := &Connector{
		transport:   opts.Transport,
		timeout:     opts.Timeout,
		userAgent:   []string{"sms-connector-twilio/" + Version},
		maxAttempts: opts.MaxAttempts,
		backoffBase: defaultBackoffBase,
		backoffMax:  defaultBackoffMax,
		randN:       rand.Int64N,
		sleep:       sleepContext,
		configs:     connector.NewConfigCache[*prepared](opts.ConfigCacheSize, 0),
		maxSegments: opts.MaxSegments,
		callbackURL: opts.StatusCallbackURL,
	}
	switch {
	case c.timeout < 0:
		return nil, fmt.Errorf("twilio: negative Timeout %v", opts.Timeout)
	case c.timeout == 0:
		c.timeout = DefaultTimeout
	}
	switch {
	case c.maxAttempts < 0:
		return nil, fmt.Errorf("twilio: negative MaxAttempts %d", opts.MaxAttempts)
	case c.maxAttempts == 0:
		c.maxAttempts = DefaultMaxAttempts
	}
	if opts.StatusCallbackURL != "" {
		u, err := url.Parse(opts.StatusCallbackURL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil {
			return nil, fmt.Errorf("twilio: StatusCallbackURL %q: want an absolute http(s) URL without credentials", opts.StatusCallbackURL)
		}
	}
	if opts.APIURL != "" {
		u, err := url.Parse(opts.APIURL)
		switch {
		case err != nil:
			return nil, fmt.Errorf("twilio: APIURL: %w", err)
		case u.Scheme != "http" && u.Scheme != "https":
			return nil, fmt.Errorf("twilio: APIURL %q: scheme must be http or https", opts.APIURL)
		case u.Host == "":
			return nil, fmt.Errorf("twilio: APIURL %q: no host", opts.APIURL)
		case u.User != nil:
			return nil, fmt.Errorf("twilio: APIURL: must not carry user information")
		case strings.TrimSuffix(u.Path, "/") != "" || u.RawQuery != "" || u.Fragment != "":
			return nil, fmt.Errorf("twilio: APIURL %q: only scheme and host are allowed, no path or query", opts.APIURL)
		}
		c.baseURL = &url.URL{Scheme: u.Scheme, Host: u.Host}
	}
	if c.transport == nil {
		c.ownTransport = newDefaultTransport()
		c.transport = c.ownTransport
	}
	return c, nil
}

// Close releases the idle connections of the transport New created. A transport passed in
// Options.Transport is the caller's and is left alone. Sends may still be made afterwards; they
// open new connections.
func (c *Connector) Close() error {
	if c.ownTransport != nil {
		c.ownTransport.CloseIdleConnections()
	}
	return nil
}

// ValidateConfig reports every problem of a Twilio configuration; see ParseConfig. It never
// fails.
// A valid configuration is prepared and cached on the way, so the default configuration a server
// checks at start-up is never parsed again.
func (c *Connector) ValidateConfig(_ context.Context, config json.RawMessage) ([]connector.Violation, error) {
	_, vs := c.configs.Load(bytes.TrimSpace(config), c.prepare)
	return vs, nil
}

// prepared is what the connector makes of a valid configuration, once: the parsed Config, and
// what every Send with it needs ready-made.
type prepared struct {
	cfg          *Config
	templates    *connector.TemplateSet // cfg.Templates, compiled
	credentials  *twclient.Credentials  // read-only; shared by every Send
	edge, region string                 // of cfg.Host
	sender       string
}

// prepare parses and validates raw, and prepares the result for sending.
func (c *Connector) prepare(raw []byte) (*prepared, []connector.Violation) {
	cfg, vs := ParseConfig(raw)
	if len(vs) > 0 {
		return nil, vs
	}
	p := &prepared{
		cfg:         cfg,
		templates:   connector.NewTemplateSet(cfg.Templates, MaxBodyLength, "Twilio's limit", c.maxSegments),
		credentials: twclient.NewCredentials(cfg.credentials()),
		sender:      cfg.sender(),
	}
	p.edge, p.region = cfg.edgeRegion()
	return p, nil
}

// Send renders the template for msg's usage type and locale and creates the message at Twilio.
// msg.To must be E.164 and msg checked (connector.Message.Check); the server does both.
//
// Failures are *connector.Error: CONFIG_MISSING for an empty msg.Config, INVALID_CONFIG with
// every violation, TEMPLATE_NOT_FOUND, MESSAGE_TOO_LONG (over 1600 UTF-16 code units, checked
// before any request), and for Twilio's answers the reasons of the design's Twilio table, with
// Provider "twilio", ProviderCode and MoreInfo. Only failures that prove Twilio never
// processed the request (429/20429, a failed dial) are retried, up to Options.MaxAttempts
// attempts; see the package documentation.
func (c *Connector) Send(ctx context.Context, msg *connector.Message) (*connector.Receipt, error) {
	if msg == nil {
		return nil, connector.Errorf(connector.ReasonInvalidRequest, "no message to send")
	}
	pc, err := c.configs.LoadForSend(msg.Config, "Twilio", c.prepare)
	if err != nil {
		return nil, err
	}
	cfg := pc.cfg
	rendered, err := pc.templates.Render(msg.UsageType, msg.Payload)
	if err != nil {
		return nil, err
	}

	params := &openapi.CreateMessageParams{}
	params.SetTo(msg.To).SetBody(rendered.Body)
	if cfg.FromMessagingServiceSID != "" {
		params.SetMessagingServiceSid(cfg.FromMessagingServiceSID)
	} else {
		params.SetFrom(cfg.From)
	}
	if cfg.ValidityPeriod > 0 {
		params.SetValidityPeriod(cfg.ValidityPeriod)
	}
	if cfg.DisableRiskCheck {
		params.SetRiskCheck("disable")
	}
	if c.callbackURL != "" {
		params.SetStatusCallback(c.callbackURL)
	}

	m, err := c.create(ctx, pc, params)
	if err != nil {
		return nil, err
	}
	r := &connector.Receipt{
		MessageID: *m.Sid,
		Segments:  rendered.Segments,
		Encoding:  rendered.Encoding,
		To:        msg.To,
		Sender:    pc.sender,
	}
	if m.Status != nil {
		r.Status = *m.Status
	}
	return r, nil
}

// vendor names Twilio in the errors of connector/httpvendor.
var vendor = httpvendor.Vendor{Provider: Provider, Name: "Twilio"}

// attempt makes one attempt at creating the message with params, bounded by ctx and the
// attempt timeout. On failure it also returns the delay the answer's Retry-After header asks
// for, 0 when there is none, for the retry loop.
func (c *Connector) attempt(ctx context.Context, pc *prepared, params *openapi.CreateMessageParams) (*openapi.ApiV2010Message, time.Duration, *connector.Error) {
	actx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	rt := &httpvendor.Transport{Base: c.transport, Context: actx, BaseURL: c.baseURL}
	defer rt.Close() // twilio-go leaves the body of an error answer open

	m, err := c.api(pc, rt).CreateMessage(params)
	if err != nil {
		return nil, httpvendor.RetryAfter(rt.Header.Get("Retry-After")), classify(ctx, actx, rt, fmt.Errorf("twilio: create message: %w", err))
	}
	// twilio-go returns any 2xx or 3xx answer as a message; without a SID it is none.
	if m.Sid == nil || *m.Sid == "" {
		return nil, 0, &connector.Error{
			Reason:   connector.ReasonProviderInvalidResponse,
			Message:  fmt.Sprintf("Twilio answered HTTP %d without a message SID; the message may or may not have been created", rt.Status),
			Provider: Provider,
			Err:      fmt.Errorf("twilio: create message: HTTP %d response has no sid", rt.Status),
		}
	}
	return m, 0, nil
}

// api returns twilio-go's API client for one attempt with pc's credentials, sending through rt.
func (c *Connector) api(pc *prepared, rt *httpvendor.Transport) *openapi.ApiService {
	client := &twclient.Client{Credentials: pc.credentials, HTTPClient: rt.Client(), UserAgentExtensions: c.userAgent}
	client.SetAccountSid(pc.cfg.AccountSID)
	// The request handler takes edge and region from the configuration's host alone:
	// twilio-go's NewRequestHandler would take them from TWILIO_EDGE and TWILIO_REGION.
	return openapi.NewApiService(&twclient.RequestHandler{Client: client, Edge: pc.edge, Region: pc.region})
}

// newDefaultTransport returns the transport a Connector uses when Options.Transport is nil: a
// clone of http.DefaultTransport (proxy from the environment, HTTP/2, dial and TLS timeouts)
// that keeps enough idle connections to Twilio for concurrent sends: 256 per host, so that up
// to 256 concurrent sends reuse their connections instead of opening and closing one each (Go's
// default keeps 2).
func newDefaultTransport() *http.Transport {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.MaxIdleConns = 512
	t.MaxIdleConnsPerHost = 256
	t.IdleConnTimeout = 90 * time.Second
	t.TLSHandshakeTimeout = 10 * time.Second
	t.ResponseHeaderTimeout = 0 // bounded by the attempt's context instead
	return t
}
