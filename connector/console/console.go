// Package console is the development SMS connector: instead of sending an SMS it writes each
// rendered message as one JSON line to an io.Writer (standard error by default). It is the
// contract's in-memory reference driver, as mempubsub is for the Go CDK's pubsub: a platform
// can be developed and tested against it without any vendor account, and it passes the same
// conformance suite (package connectortest) as the Twilio connector.
//
// Its configuration is Logto's template list (see Config), validated with the Twilio
// connector's template rules and its 1600-character body limit, so that what works here works
// on Twilio. The template list's validation, template selection and rendering, and segment
// counting come from package connector.
//
// Each line is an Entry:
//
//	{"time":"2025-01-02T03:04:05.123456789Z","id":"console-3f9a...","to":"+14155550123","usageType":"SignIn","locale":"fr","body":"Votre code : 123456","segments":1,"encoding":"GSM-7"}
//
// The lines carry verification codes: they are for development, not for production logs.
//
// The connector also tells delivery statuses (connector.StatusReader) from what it wrote: a
// message it wrote is DELIVERED (it reached its destination, the console), with the vendor
// status "written"; it remembers the last Options.KeptStatuses messages (DefaultKeptStatuses),
// and an id it never wrote, or has forgotten, is MESSAGE_NOT_FOUND.
package console

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	"github.com/sms-connector/sms-connector/connector"
)

// ID is the connector id. Platforms key stored configurations by it, so it never changes.
const ID = "console-sms"

// Version is the connector's own version, reported by Metadata.
const Version = "0.1.0"

// Provider is the name the connector's errors carry in connector.Error.Provider.
const Provider = "console"

// Status is the receipt status of a message: it was written, and that is all that happens.
const Status = "written"

// DefaultKeptStatuses is how many written messages a Connector remembers for MessageStatus when
// Options.KeptStatuses is 0; past it, the oldest is forgotten.
const DefaultKeptStatuses = 10_000

// Entry is one line the connector writes: a message as it would have been sent.
type Entry struct {
	// Time is when the message was written, in UTC.
	Time time.Time `json:"time"`
	// ID is the message id, "console-" and 32 random hex digits; the receipt's MessageID.
	ID string `json:"id"`
	// To is the E.164 recipient.
	To string `json:"to"`
	// Sender is the configuration's senderName, if any.
	Sender string `json:"sender,omitempty"`
	// UsageType is the message's usage type.
	UsageType connector.UsageType `json:"usageType"`
	// Locale is the payload's locale, empty when none was given.
	Locale string `json:"locale"`
	// Body is the rendered message.
	Body string `json:"body"`
	// Segments is how many SMS segments the body would take.
	Segments int `json:"segments"`
	// Encoding is the character set the body would be sent in.
	Encoding connector.Encoding `json:"encoding"`
}

// Options configure a Connector. They belong to the operator: where messages are written is
// deliberately not part of the per-request configuration, which a platform sends and which
// must never choose a path on the server.
type Options struct {
	// Writer receives one JSON line per message; nil means os.Stderr. Each line is written
	// with a single Write call, one at a time. To write to a file, pass the one OpenFile opens.
	Writer io.Writer
	// MaxSegments refuses, with MESSAGE_TOO_LONG, a message whose rendered body takes more SMS
	// segments; 0 means no limit but MaxBodyLength. A binary passes sdk.Runtime.MaxSegments.
	MaxSegments int
	// KeptStatuses is how many written messages MessageStatus remembers: 0 means
	// DefaultKeptStatuses, a negative value none (every id is then MESSAGE_NOT_FOUND).
	KeptStatuses int
}

// Connector writes messages as JSON lines. It is safe for concurrent use: lines never
// interleave.
type Connector struct {
	w io.Writer
	// lock serialises writes. It is a one-slot channel rather than a sync.Mutex so that a Send
	// waiting behind a slow writer can give up when its context ends.
	lock chan struct{}
	// configs holds the valid configurations seen, prepared once each.
	configs     *connector.ConfigCache[*prepared]
	maxSegments int // Options.MaxSegments
	written     writtenLog
}

var (
	_ connector.SmsConnector = (*Connector)(nil)
	_ connector.StatusReader = (*Connector)(nil)
)

// New returns a Connector writing to opts.Writer.
func New(opts Options) *Connector {
	w := opts.Writer
	if w == nil {
		w = os.Stderr
	}
	kept := opts.KeptStatuses
	switch {
	case kept == 0:
		kept = DefaultKeptStatuses
	case kept < 0:
		kept = 0
	}
	return &Connector{w: w, lock: make(chan struct{}, 1), configs: connector.NewConfigCache[*prepared](0, 0), maxSegments: opts.MaxSegments,
		written: writtenLog{max: kept}}
}

// OpenFile opens path for appending JSON lines, creating it with mode 0600 if it does not
// exist (the lines carry verification codes), for use as Options.Writer. The caller closes it.
// Appending keeps each line whole even when several processes share the file.
func OpenFile(path string) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("console: %w", err)
	}
	return f, nil
}

// ValidateConfig reports every problem of a console configuration; see ParseConfig. It never
// fails.
// A valid configuration is prepared and cached on the way, as Send does.
func (c *Connector) ValidateConfig(_ context.Context, config json.RawMessage) ([]connector.Violation, error) {
	_, vs := c.configs.Load(bytes.TrimSpace(config), c.prepare)
	return vs, nil
}

// prepared is a valid configuration with its templates compiled, made once per configuration
// and kept in the Connector's cache (connector.ConfigCache).
type prepared struct {
	cfg       *Config
	templates *connector.TemplateSet // cfg.Templates, compiled
}

// prepare parses and validates raw and compiles its templates.
func (c *Connector) prepare(raw []byte) (*prepared, []connector.Violation) {
	cfg, vs := ParseConfig(raw)
	if len(vs) > 0 {
		return nil, vs
	}
	return &prepared{cfg: cfg, templates: connector.NewTemplateSet(cfg.Templates, MaxBodyLength, "the limit", c.maxSegments)}, nil
}

// Send renders the template for msg's usage type and locale and writes it as one Entry line.
//
// Failures are *connector.Error: CANCELLED or PROVIDER_TIMEOUT when ctx ends before the line
// is written (then nothing is written), CONFIG_MISSING for an empty msg.Config (the server
// fills in its default configuration before calling Send), INVALID_CONFIG with every
// violation, TEMPLATE_NOT_FOUND, MESSAGE_TOO_LONG over MaxBodyLength or Options.MaxSegments, and PROVIDER_UNAVAILABLE
// (nothing written) or PROVIDER_OUTCOME_UNKNOWN (part of the line written) when the writer
// fails. A Write that blocks cannot be interrupted; a Send waiting for it gives up when its
// context ends.
func (c *Connector) Send(ctx context.Context, msg *connector.Message) (*connector.Receipt, error) {
	if msg == nil {
		return nil, connector.Errorf(connector.ReasonInvalidRequest, "no message to send")
	}
	if err := contextError(ctx); err != nil {
		return nil, err
	}
	pc, err := c.configs.LoadForSend(msg.Config, "console", c.prepare)
	if err != nil {
		return nil, err
	}
	cfg := pc.cfg
	m, err := pc.templates.Render(msg.UsageType, msg.Payload)
	if err != nil {
		return nil, err
	}
	e := Entry{
		ID:        newID(),
		To:        msg.To,
		Sender:    cfg.SenderName,
		UsageType: msg.UsageType,
		Locale:    msg.Payload.Locale,
		Body:      m.Body,
		Segments:  m.Segments,
		Encoding:  m.Encoding,
	}
	if err := c.write(ctx, &e); err != nil {
		return nil, err
	}
	c.written.add(connector.MessageStatus{MessageID: e.ID, To: e.To, State: connector.DeliveryDelivered,
		VendorStatus: Status, UpdatedAt: e.Time, Segments: e.Segments})
	return &connector.Receipt{
		MessageID: e.ID,
		Status:    Status,
		Segments:  m.Segments,
		Encoding:  m.Encoding,
		To:        msg.To,
		Sender:    cfg.SenderName,
	}, nil
}

// MessageStatus reports a message this connector wrote, among the last Options.KeptStatuses, as
// DELIVERED with the vendor status "written", the time it was written and its segments; any
// other id is MESSAGE_NOT_FOUND. The configuration does not matter: every message was written
// to the same place. It fails otherwise only as Send does when ctx has ended.
func (c *Connector) MessageStatus(ctx context.Context, messageID string, _ json.RawMessage) (*connector.MessageStatus, error) {
	if err := contextError(ctx); err != nil {
		return nil, err
	}
	st, ok := c.written.get(messageID)
	if !ok {
		return nil, &connector.Error{Reason: connector.ReasonMessageNotFound, Provider: Provider,
			Message: fmt.Sprintf("the console connector has not written a message with id %q (it remembers the last %d)", messageID, c.written.max)}
	}
	return &st, nil
}

// writtenLog remembers the statuses of the last max messages written: a map by id, and the
// ids in the order written, in a ring, to forget the oldest.
type writtenLog struct {
	max int // never changed after New

	mu    sync.Mutex
	byID  map[string]connector.MessageStatus
	order []string // a ring of at most max ids; next is where the next id goes
	next  int
}

// add records st, forgetting the oldest record when max are kept.
func (l *writtenLog) add(st connector.MessageStatus) {
	if l.max == 0 {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.byID == nil {
		l.byID = make(map[string]connector.MessageStatus)
	}
	if len(l.order) < l.max {
		l.order = append(l.order, st.MessageID)
	} else {
		delete(l.byID, l.order[l.next])
		l.order[l.next] = st.MessageID
		l.next = (l.next + 1) % l.max
	}
	l.byID[st.MessageID] = st
}

// get returns the status recorded for id.
func (l *writtenLog) get(id string) (connector.MessageStatus, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	st, ok := l.byID[id]
	return st, ok
}

// write writes e as one line, holding the lock, unless ctx ends first.
func (c *Connector) write(ctx context.Context, e *Entry) error {
	select {
	case c.lock <- struct{}{}:
	case <-ctx.Done():
		return contextError(ctx)
	}
	defer func() { <-c.lock }()
	// Both cases of the select may have been ready; a context that ended wins.
	if err := contextError(ctx); err != nil {
		return err
	}
	e.Time = time.Now().UTC()
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false) // keep <, > and & readable in bodies
	if err := enc.Encode(e); err != nil {
		return &connector.Error{Reason: connector.ReasonInternal, Message: "could not encode the message", Provider: Provider, Err: err}
	}
	n, err := c.w.Write(buf.Bytes())
	if err == nil && n < buf.Len() {
		err = io.ErrShortWrite
	}
	switch {
	case err == nil:
		return nil
	case n == 0:
		return &connector.Error{Reason: connector.ReasonProviderUnavailable, Provider: Provider, RetryAfter: time.Second,
			Message: "could not write the message to the console connector's output; nothing was written", Err: err}
	default:
		return &connector.Error{Reason: connector.ReasonProviderOutcomeUnknown, Provider: Provider,
			Message: fmt.Sprintf("writing the message to the console connector's output failed after %d of %d bytes", n, buf.Len()), Err: err}
	}
}

// contextError returns the *connector.Error for a context that has ended, or nil: CANCELLED
// when it was cancelled, PROVIDER_TIMEOUT when its deadline passed.
func contextError(ctx context.Context) error {
	switch err := ctx.Err(); {
	case err == nil:
		return nil
	case errors.Is(err, context.DeadlineExceeded):
		return &connector.Error{Reason: connector.ReasonProviderTimeout, Provider: Provider,
			Message: "the request's deadline passed before the message was written; nothing was written", Err: err}
	default:
		return &connector.Error{Reason: connector.ReasonCancelled, Provider: Provider,
			Message: "the request was cancelled before the message was written; nothing was written", Err: err}
	}
}

// newID returns "console-" followed by 32 random lowercase hex digits.
func newID() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails
	return "console-" + hex.EncodeToString(b[:])
}
