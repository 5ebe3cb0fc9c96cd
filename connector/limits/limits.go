// Package limits bounds what one connector does for its callers, for every vendor alike: how
// many SMS segments one message may take, and how many sends may run at once. A Connector
// wraps any connector.SmsConnector and refuses, before the vendor is called:
//
//   - a message whose rendered body takes more than Options.MaxSegments segments:
//     MESSAGE_TOO_LONG (FAILED_PRECONDITION), since a long template or long variables would
//     multiply what every code costs;
//   - a send beyond Options.MaxConcurrent sends in flight: OVERLOADED (RESOURCE_EXHAUSTED) with
//     a RetryAfter, at once, rather than queueing without bound behind a slow vendor.
//
// # The rendered body
//
// The body is rendered inside the vendor's driver, from the vendor's configuration. This
// package sees only the message, so it renders the body the way every driver of this
// repository does: it reads the "templates" list of the message's JSON configuration (Logto's
// shape, connector.Template) and applies connector.SelectTemplate, connector.Render and
// connector.CountSegments, which the Twilio and console drivers call too, so both sides see the
// same body. A configuration without such a list (another vendor's shape), or one the vendor
// will reject anyway (no template for the usage type, a list that does not decode, or any
// problem its ValidateConfig reports), is not refused here: the vendor answers it, with every
// problem of the configuration. A vendor whose configuration has another shape enforces
// its own limit.
//
// Stacking: put it inside idempotency and outside the abuse guard
// (idempotency.New(limits.New(guard.New(vendor, ...), ...), ...)): duplicates waiting for an
// idempotent send hold no slot, and a refused message never takes a slot of the guard's windows.
package limits

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/sms-connector/sms-connector/connector"
)

// Defaults for a connector binary (package sdk's flags).
const (
	// DefaultMaxSegments allows a verification message of up to 10 segments (1530 GSM-7
	// characters): far more than a code needs, far less than a pumping template would use.
	DefaultMaxSegments = 10
	// DefaultMaxConcurrent allows 256 sends in flight at once.
	DefaultMaxConcurrent = 256
)

// OverloadedRetryAfter is the RetryAfter of an OVERLOADED refusal: sends in flight finish in
// about a vendor round trip, so a second is enough for a slot to free.
const OverloadedRetryAfter = time.Second

// Options configure a Connector; a zero field means no limit.
type Options struct {
	// MaxSegments refuses, with MESSAGE_TOO_LONG, a message whose rendered body takes more SMS
	// segments (connector.CountSegments).
	MaxSegments int
	// MaxConcurrent is how many sends may be in flight through the Connector at once; one more
	// is refused with OVERLOADED.
	MaxConcurrent int
}

// Connector enforces Options in front of another connector.SmsConnector. It is safe for
// concurrent use.
type Connector struct {
	connector.Forward // ValidateConfig and Metadata are the wrapped connector's
	maxSegments       int
	slots             chan struct{} // nil: no concurrency limit
	// templates holds each configuration's templates, compiled, so the segment check reads a
	// configuration that comes with every request once, as the vendors do.
	templates *connector.ConfigCache[*compiledTemplates]
}

var _ connector.SmsConnector = (*Connector)(nil)

// New returns a Connector enforcing o in front of next. It fails for a nil next or negative
// options.
func New(next connector.SmsConnector, o Options) (*Connector, error) {
	switch {
	case next == nil:
		return nil, errors.New("limits: no connector to wrap")
	case o.MaxSegments < 0:
		return nil, fmt.Errorf("limits: negative MaxSegments %d", o.MaxSegments)
	case o.MaxConcurrent < 0:
		return nil, fmt.Errorf("limits: negative MaxConcurrent %d", o.MaxConcurrent)
	}
	c := &Connector{Forward: connector.Forward{Next: next}, maxSegments: o.MaxSegments, templates: connector.NewConfigCache[*compiledTemplates](0, 0)}
	if o.MaxConcurrent > 0 {
		c.slots = make(chan struct{}, o.MaxConcurrent)
	}
	return c, nil
}

// Send checks msg's segments, takes a slot and sends msg through the wrapped connector. It
// refuses with MESSAGE_TOO_LONG or OVERLOADED (see the package documentation); nothing is sent
// then.
func (c *Connector) Send(ctx context.Context, msg *connector.Message) (*connector.Receipt, error) {
	if msg != nil && c.maxSegments > 0 {
		if err := c.checkSegments(msg); err != nil && !c.invalidConfig(ctx, msg.Config) {
			return nil, err
		}
	}
	if c.slots != nil {
		select {
		case c.slots <- struct{}{}:
			defer func() { <-c.slots }()
		default:
			return nil, &connector.Error{
				Reason: connector.ReasonOverloaded,
				Message: fmt.Sprintf("the connector is already running %d sends, the most it runs at once; nothing was sent, retry shortly",
					cap(c.slots)),
				RetryAfter: OverloadedRetryAfter,
			}
		}
	}
	return c.Next.Send(ctx, msg)
}

// invalidConfig reports whether the wrapped connector finds problems in config: then it is
// the one to refuse the message, with every problem of the configuration (INVALID_CONFIG),
// rather than this package with a segment count of templates it would not use. Asked only for
// a message over the segment limit, so a valid configuration costs nothing more.
func (c *Connector) invalidConfig(ctx context.Context, config json.RawMessage) bool {
	vs, err := c.Next.ValidateConfig(ctx, config)
	return err == nil && len(vs) > 0
}

// InFlight reports how many sends hold a slot now (0 without a concurrency limit).
func (c *Connector) InFlight() int { return len(c.slots) }

// templatesOnly is the part of a configuration the segment check reads.
type templatesOnly struct {
	Templates []connector.Template `json:"templates"`
}

// compiledTemplates is a configuration's templates with each one compiled, at the same index.
type compiledTemplates struct {
	templates []connector.Template
	compiled  []*connector.CompiledTemplate
}

// unreadable marks a configuration the check leaves to the vendor; the cache keeps nothing
// of it.
func unreadable() []connector.Violation {
	return []connector.Violation{{Field: "templates", Description: "not readable by the segment check"}}
}

// prepareTemplates reads and compiles the templates of a configuration.
func prepareTemplates(raw []byte) (*compiledTemplates, []connector.Violation) {
	var cfg templatesOnly
	if err := json.Unmarshal(raw, &cfg); err != nil || len(cfg.Templates) == 0 {
		return nil, unreadable()
	}
	ct := &compiledTemplates{templates: cfg.Templates, compiled: make([]*connector.CompiledTemplate, len(cfg.Templates))}
	for i, t := range cfg.Templates {
		ct.compiled[i] = connector.CompileTemplate(t.Content)
	}
	return ct, nil
}

// checkSegments renders msg's body as the vendor will and refuses it when it takes more than
// maxSegments segments. A configuration it cannot read is left to the vendor.
func (c *Connector) checkSegments(msg *connector.Message) error {
	raw := bytes.TrimSpace(msg.Config)
	if len(raw) == 0 || raw[0] != '{' {
		return nil
	}
	ct, vs := c.templates.Load(raw, prepareTemplates)
	if len(vs) > 0 {
		return nil
	}
	i, err := connector.SelectTemplateIndex(ct.templates, msg.UsageType, msg.Payload.Locale)
	if err != nil {
		return nil // TEMPLATE_NOT_FOUND: the vendor says so itself
	}
	body := ct.compiled[i].Render(msg.Payload)
	segments, enc := connector.CountSegments(body)
	if segments <= c.maxSegments {
		return nil
	}
	return connector.Errorf(connector.ReasonMessageTooLong,
		"the rendered %s message takes %d SMS segments (%s), over this connector's limit of %d: shorten its template or its variables",
		ct.templates[i].UsageType, segments, enc, c.maxSegments)
}
