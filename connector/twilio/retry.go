package twilio

import (
	"context"
	"errors"
	"fmt"
	"time"

	openapi "github.com/twilio/twilio-go/rest/api/v2010"

	"github.com/sms-connector/sms-connector/connector"
	"github.com/sms-connector/sms-connector/connector/httpvendor"
)

// DefaultMaxAttempts is how many attempts one Send makes at most when Options.MaxAttempts is 0:
// the first and two retries of failures that prove Twilio never processed the request.
const DefaultMaxAttempts = 3

const (
	// defaultBackoffBase is the ceiling of the first retry's wait; each further retry doubles
	// it, up to defaultBackoffMax. Waits are drawn uniformly below the ceiling ("full
	// jitter"), so that callers throttled together do not come back together.
	defaultBackoffBase = 250 * time.Millisecond
	// defaultBackoffMax caps the ceiling of any backoff wait.
	defaultBackoffMax = 2 * time.Second
	// maxRetryWait is the longest wait Send sits out before a retry, Retry-After included. A
	// longer Retry-After is handed to the caller (as RetryAfter of the error) instead: an RPC
	// should not hang for it, and the caller knows better whether waiting is worth it.
	maxRetryWait = 10 * time.Second
)

// create creates the message at Twilio with params, retrying the attempts that prove Twilio
// never processed the request (httpvendor.Retryable); see retry.
func (c *Connector) create(ctx context.Context, pc *prepared, params *openapi.CreateMessageParams) (*openapi.ApiV2010Message, error) {
	var m *openapi.ApiV2010Message
	err := c.retry(ctx, httpvendor.Retryable, "the message was not sent", func() (time.Duration, *connector.Error) {
		var retryAfter time.Duration
		var err *connector.Error
		m, retryAfter, err = c.attempt(ctx, pc, params)
		return retryAfter, err
	})
	if err != nil {
		return nil, err
	}
	return m, nil
}

// retry makes attempt until it succeeds or fails with an error retryable does not accept, at
// most c.maxAttempts times in all; attempt returns, with its failure, the delay the answer's
// Retry-After asks for (0 for none). Before each retry it waits the backoff or that delay,
// whichever is longer, unless that wait is longer than maxRetryWait, or the wait and then
// another attempt as long as the last one would end past ctx's deadline: then it returns the
// last failure at once, rather than sleeping into a DEADLINE_EXCEEDED. cancelled is what a
// cancellation during a wait says of the outcome ("the message was not sent").
func (c *Connector) retry(ctx context.Context, retryable func(*connector.Error) bool, cancelled string, attempt func() (time.Duration, *connector.Error)) *connector.Error {
	for n := 1; ; n++ {
		start := time.Now()
		retryAfter, err := attempt()
		if err == nil {
			return nil
		}
		if !retryable(err) {
			return err
		}
		if n >= c.maxAttempts {
			if n > 1 {
				err.Message += fmt.Sprintf(" (gave up after %d attempts)", n)
			}
			return err
		}
		wait := max(c.backoff(n), retryAfter)
		if wait > maxRetryWait {
			err.Message += fmt.Sprintf(" (not retried: Twilio asks to wait %v, longer than the connector waits before a retry)", wait.Round(time.Millisecond))
			return err
		}
		// Measured now, after the attempt: the time left, and how long an attempt takes.
		if dl, ok := ctx.Deadline(); ok && wait+time.Since(start) >= time.Until(dl) {
			err.Message += fmt.Sprintf(" (not retried: the request's deadline leaves no time to wait %v and try again)", wait.Round(time.Millisecond))
			return err
		}
		if serr := c.sleep(ctx, wait); serr != nil {
			return interruptedWait(err, serr, cancelled)
		}
	}
}

// backoff returns the wait before retry number n (1 for the first retry): uniform in
// [0, min(backoffMax, backoffBase*2^(n-1))], exponential backoff with full jitter.
func (c *Connector) backoff(n int) time.Duration {
	ceiling := c.backoffMax
	if n-1 < 32 {
		if d := c.backoffBase << (n - 1); d > 0 && d < ceiling {
			ceiling = d
		}
	}
	if ceiling <= 0 {
		return 0
	}
	return time.Duration(c.randN(int64(ceiling) + 1))
}

// interruptedWait is the failure of a call whose context ended while it waited to retry after
// last. The attempt before the wait changed nothing (that is why it was being retried), so a
// cancellation says so with outcome; a deadline that passed anyway keeps last's reason.
func interruptedWait(last *connector.Error, ctxErr error, outcome string) *connector.Error {
	cause := fmt.Errorf("%w; waiting to retry: %w", last.Err, ctxErr)
	if errors.Is(ctxErr, context.Canceled) {
		return &connector.Error{
			Reason:   connector.ReasonCancelled,
			Message:  "the request was cancelled while waiting to retry; " + outcome,
			Provider: Provider,
			Err:      cause,
		}
	}
	e := *last
	e.Err = cause
	e.Message += " (the request's deadline passed while waiting to retry)"
	return &e
}

// sleepContext waits d, or until ctx ends, and then returns ctx's error.
func sleepContext(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
