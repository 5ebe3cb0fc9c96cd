// Package limits bounds how many sends one connector runs at once, for every vendor alike. A
// Connector wraps any connector.SmsConnector and refuses a send beyond Options.MaxConcurrent
// sends in flight with OVERLOADED (RESOURCE_EXHAUSTED) and a RetryAfter, at once, rather than
// queueing without bound behind a slow vendor. Where it sits among the other decorators is
// written in sdk.Defend.
package limits

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/sms-connector/sms-connector/connector"
)

// DefaultMaxConcurrent is the concurrency limit of a connector binary unless its operator sets
// another (package sdk's --max-concurrent-sends): 256 sends in flight at once.
const DefaultMaxConcurrent = 256

// OverloadedRetryAfter is the RetryAfter of an OVERLOADED refusal: sends in flight finish in
// about a vendor round trip, so a second is enough for a slot to free.
const OverloadedRetryAfter = time.Second

// Options configure a Connector.
type Options struct {
	// MaxConcurrent is how many sends may be in flight through the Connector at once; one more
	// is refused with OVERLOADED. 0 means no limit.
	MaxConcurrent int
}

// Connector enforces Options in front of another connector.SmsConnector. It is safe for
// concurrent use.
type Connector struct {
	connector.Forward               // ValidateConfig and Metadata are the wrapped connector's
	slots             chan struct{} // nil: no concurrency limit
}

var _ connector.SmsConnector = (*Connector)(nil)

// New returns a Connector enforcing o in front of next. It fails for a nil next or a negative
// MaxConcurrent.
func New(next connector.SmsConnector, o Options) (*Connector, error) {
	switch {
	case next == nil:
		return nil, errors.New("limits: no connector to wrap")
	case o.MaxConcurrent < 0:
		return nil, fmt.Errorf("limits: negative MaxConcurrent %d", o.MaxConcurrent)
	}
	c := &Connector{Forward: connector.Forward{Next: next}}
	if o.MaxConcurrent > 0 {
		c.slots = make(chan struct{}, o.MaxConcurrent)
	}
	return c, nil
}

// Send takes a slot and sends msg through the wrapped connector. With every slot taken it
// refuses msg with OVERLOADED, and nothing is sent.
func (c *Connector) Send(ctx context.Context, msg *connector.Message) (*connector.Receipt, error) {
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

// InFlight reports how many sends hold a slot now (0 without a concurrency limit).
func (c *Connector) InFlight() int { return len(c.slots) }
