// Package examplesms is the Example SMS connector: it implements connector.SmsConnector over
// a made-up JSON API (see package examplesmstest). It is a skeleton to copy: rename it, replace
// the request and the error codes with your vendor's, and keep the rest.
//
// Each Send loads the prepared configuration (connector.ConfigCache), renders the template
// (connector.TemplateSet, which also enforces the body and segment limits), makes one HTTP call
// through an httpvendor.Transport (bound to the caller's context, no redirects), and turns the
// answer into a receipt or a *connector.Error.
package examplesms

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"time"

	"github.com/sms-connector/sms-connector/connector"
	"github.com/sms-connector/sms-connector/connector/httpvendor"
)

// Identity of the connector. Platforms key stored configurations by ID: it never changes.
const (
	ID       = "example-sms"
	Provider = "example-sms"
	Version  = "0.1.0"
)

// DefaultAPIURL is the vendor's API, used unless the operator sets Options.APIURL.
const DefaultAPIURL = "https://api.example-sms.invalid"

// Options belong to the operator (flags of the binary); no tenant configuration changes them.
type Options struct {
	// APIURL replaces DefaultAPIURL (scheme and host only): a proxy or the test double.
	APIURL string
	// Timeout bounds one call to the vendor; 0 means 10s. The caller's deadline applies too.
	Timeout time.Duration
	// MaxSegments is sdk.Runtime.MaxSegments: the most SMS segments one message may take.
	MaxSegments int
}

// Connector sends through Example SMS. It is safe for concurrent use; make one per process.
type Connector struct {
	base        *http.Transport // shared by every call, so calls share connections
	apiURL      *url.URL
	timeout     time.Duration
	maxSegments int
	configs     *connector.ConfigCache[*prepared]
}

var _ connector.SmsConnector = (*Connector)(nil)

// New returns a Connector; it fails only for an APIURL that is not an http(s) URL of a host.
func New(opts Options) (*Connector, error) {
	if opts.APIURL == "" {
		opts.APIURL = DefaultAPIURL
	}
	u, err := url.Parse(opts.APIURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || (u.Path != "" && u.Path != "/") {
		return nil, fmt.Errorf("examplesms: APIURL %q must be http(s)://host[:port]", opts.APIURL)
	}
	if opts.Timeout <= 0 {
		opts.Timeout = 10 * time.Second
	}
	return &Connector{
		base:        http.DefaultTransport.(*http.Transport).Clone(),
		apiURL:      &url.URL{Scheme: u.Scheme, Host: u.Host},
		timeout:     opts.Timeout,
		maxSegments: opts.MaxSegments,
		configs:     connector.NewConfigCache[*prepared](0, 0),
	}, nil
}

// Close releases idle connections; the SDK calls it when the server has stopped.
func (c *Connector) Close() error {
	c.base.CloseIdleConnections()
	return nil
}

// prepared is a valid configuration with its templates compiled, made once per configuration.
type prepared struct {
	cfg       *Config
	templates *connector.TemplateSet
}

func (c *Connector) prepare(raw []byte) (*prepared, []connector.Violation) {
	cfg, vs := ParseConfig(raw)
	if len(vs) > 0 {
		return nil, vs
	}
	return &prepared{cfg: cfg, templates: connector.NewTemplateSet(cfg.Templates, MaxBodyLength, "Example SMS's limit", c.maxSegments)}, nil
}

// ValidateConfig reports every problem of a configuration; it never fails.
func (c *Connector) ValidateConfig(_ context.Context, config json.RawMessage) ([]connector.Violation, error) {
	_, vs := c.configs.Load(bytes.TrimSpace(config), c.prepare)
	return vs, nil
}

// Send renders msg's template and sends it. Failures are *connector.Error.
func (c *Connector) Send(ctx context.Context, msg *connector.Message) (*connector.Receipt, error) {
	if msg == nil {
		return nil, connector.Errorf(connector.ReasonInvalidRequest, "no message to send")
	}
	p, err := c.configs.LoadForSend(msg.Config, "Example SMS", c.prepare)
	if err != nil {
		return nil, err
	}
	r, err := p.templates.Render(msg.UsageType, msg.Payload)
	if err != nil {
		return nil, err
	}
	ans, err := c.post(ctx, p.cfg, msg.To, r.Body)
	if err != nil {
		return nil, err
	}
	return &connector.Receipt{MessageID: ans.ID, Status: ans.Status, Segments: r.Segments, Encoding: r.Encoding, To: msg.To, Sender: p.cfg.From}, nil
}

// vendor names Example SMS in the errors httpvendor builds.
var vendor = httpvendor.Vendor{Provider: Provider, Name: "Example SMS"}

// answer is the vendor's reply: a message, or an error document.
type answer struct {
	ID     string `json:"id"`
	Status string `json:"status"`
	Error  struct {
		Code string `json:"code"`
	} `json:"error"`
}

// vendorReasons maps the vendor's own error codes; httpvendor classifies everything else.
var vendorReasons = map[string]connector.Reason{
	"invalid_recipient":   connector.ReasonInvalidPhoneNumber,
	"recipient_opted_out": connector.ReasonRecipientOptedOut,
	"invalid_sender":      connector.ReasonInvalidSender,
}

// post makes the one HTTP call of a Send.
func (c *Connector) post(ctx context.Context, cfg *Config, to, text string) (*answer, error) {
	attempt, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	t := &httpvendor.Transport{Base: c.base, Context: attempt}
	defer t.Close() // closes the answer's body, drained so that the connection is reused

	body, _ := json.Marshal(map[string]string{"to": to, "from": cfg.From, "text": text}) // strings only: cannot fail
	req, err := http.NewRequestWithContext(attempt, http.MethodPost, c.apiURL.String()+"/v1/messages", bytes.NewReader(body))
	if err != nil {
		return nil, &connector.Error{Reason: connector.ReasonInternal, Message: "could not build the request", Provider: Provider, Err: err}
	}
	req.Header.Set("Authorization", "Bearer "+cfg.APIKey)
	req.Header.Set("Content-Type", "application/json")
	resp, err := t.Client().Do(req)
	if err != nil {
		return nil, vendor.Failure(ctx, attempt, t, fmt.Errorf("examplesms: send message: %w", err))
	}
	var a answer
	err = json.NewDecoder(io.LimitReader(resp.Body, 64<<10)).Decode(&a)
	switch {
	case resp.StatusCode/100 == 2 && err == nil && a.ID != "":
		return &a, nil
	case resp.StatusCode/100 == 2 && err != nil: // the body broke off, or the caller gave up
		return nil, vendor.Failure(ctx, attempt, t, fmt.Errorf("examplesms: read answer: %w", err))
	}
	if reason, ok := vendorReasons[a.Error.Code]; ok {
		return nil, &connector.Error{Reason: reason, Provider: Provider, ProviderCode: a.Error.Code,
			Message: "Example SMS refused the message with error " + a.Error.Code}
	}
	return nil, vendor.Answer(resp.StatusCode, resp.Header.Get("Retry-After"),
		fmt.Errorf("examplesms: send message: HTTP %d %s", resp.StatusCode, a.Error.Code))
}
