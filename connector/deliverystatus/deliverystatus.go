// Package deliverystatus keeps what is known of sent messages' delivery, so that any replica can
// answer "did the code arrive?" without asking the vendor every time, and so that each message's
// final outcome is reported exactly once (to the abuse guard's delivery feedback and the
// metrics).
//
// A Store keeps one Record per message id for a TTL (DefaultTTL, 7 days, from the record's last
// change): in this process's memory (NewMemory, bounded in entries) or in Redis (package
// statusredis, shared by replicas). Reports arrive out of order and more than once (a vendor's
// callbacks, fetches from the vendor, the send itself), so a Store merges them monotonically: a
// report whose state ranks below the known one (connector.DeliveryState.Rank) is ignored, one of
// the same state only fills in what the record lacks (segments, price), and once a state is
// final it never changes. Records hold no phone number: the recipient travels only with the
// report that carries it (to OnFinal), never into a Store.
//
// New wraps a connector: its Send records each accepted message as QUEUED with the time it was
// sent, and its MessageStatus answers from the Store when the record is final or was confirmed
// by the vendor within Options.Refresh, else asks the wrapped connector (the vendor's fetch), merges the answer
// and returns the merged record. A Recorder built on the same Options takes reports that come
// from elsewhere (a vendor's status callbacks). Both call Options.OnFinal when their report
// first makes a message's state final: the Store's merge is atomic, so across every replica
// sharing it that happens once per message.
package deliverystatus

import (
	"context"
	"encoding/json"
	"errors"
	"time"

	"github.com/sms-connector/sms-connector/connector"
)

// Defaults of Options and of the stores.
const (
	// DefaultTTL is how long a record is kept after its last change: long enough for a support
	// team to look up last week's "I never got the code".
	DefaultTTL = 7 * 24 * time.Hour
	// DefaultRefresh is how long a record that is not final is answered from the Store before
	// the vendor is asked again: callbacks usually update it sooner, and a caller polling a
	// message's status costs at most one vendor fetch per message per Refresh.
	DefaultRefresh = 30 * time.Second
	// MaxMessageIDLength bounds a message id a Store keeps: vendors' ids are a few dozen
	// characters (Twilio's 34).
	MaxMessageIDLength = 128
)

// Record is what a Store keeps of one message.
type Record struct {
	// Status is the message's status, without To (a Store keeps no phone number).
	Status connector.MessageStatus
	// SentAt is when the send was accepted, as the process that sent it saw it; zero when no
	// send of this Store's users recorded it.
	SentAt time.Time
	// CheckedAt is when a report of the vendor (a fetch, a callback) last confirmed or changed
	// the record; zero while only the send is known. A report with a zero CheckedAt leaves it.
	CheckedAt time.Time
}

// Merged is the outcome of Store.Merge.
type Merged struct {
	// Record is the record as it now is in the Store.
	Record Record
	// Changed reports that the report's state became the record's (a new record, or a state
	// ranked above the known one).
	Changed bool
	// BecameFinal reports that the report made the record's state final: true for exactly one
	// report per message.
	BecameFinal bool
}

// Store keeps Records by message id. Implementations are safe for concurrent use, and Merge is
// atomic: of concurrent reports for one message, on any replica, at most one gets BecameFinal.
type Store interface {
	// Merge folds the report r into the record of r.Status.MessageID (creating it), as the
	// package documentation says: a lower-ranked state is ignored, the same state fills in
	// missing fields, a higher one replaces the state, the reason, the vendor's status and code
	// and UpdatedAt. SentAt is kept once set; CheckedAt is r's unless r was ignored. r.Status.To
	// is never stored.
	Merge(ctx context.Context, r Record) (Merged, error)
	// Get returns the record of messageID, or nil when there is none (never recorded, or
	// expired).
	Get(ctx context.Context, messageID string) (*Record, error)
}

// Options configure New and NewRecorder. Build both from the same Options.
type Options struct {
	// Store keeps the records. Required.
	Store Store
	// OnFinal, when set, is called once per message when a report first makes its state final,
	// with that report (its To, when the report carried one: a callback's or a fetch's
	// recipient) merged with the record, and the time the message was sent (zero when unknown:
	// sent by a process whose memory store this is not). It runs on the reporting goroutine
	// (the RPC's or the callback's); it must not block for long.
	OnFinal func(ctx context.Context, st *connector.MessageStatus, sentAt time.Time)
	// OnStoreError, when set, is told of each Store failure. A send whose record cannot be
	// stored still succeeds; a status read falls back to the vendor.
	OnStoreError func(error)
	// RecordSends makes Send record each accepted message as QUEUED, with its send time, for
	// the status callbacks that will follow (and the send-to-final histogram). Without
	// callbacks leave it off: no send then costs a store write, and a status read asks the
	// vendor and keeps its answer.
	RecordSends bool
	// Refresh is how long a record that is not final is answered without asking the vendor
	// (default DefaultRefresh; negative: always ask).
	Refresh time.Duration
	// Now is the clock (default time.Now).
	Now func() time.Time
}

// Recorder takes delivery reports that do not come through the connector: a vendor's status
// callbacks.
type Recorder struct {
	o Options
}

// NewRecorder returns a Recorder merging into o.Store.
func NewRecorder(o Options) (*Recorder, error) {
	if o.Store == nil {
		return nil, errors.New("deliverystatus: Options.Store is required")
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Refresh == 0 {
		o.Refresh = DefaultRefresh
	}
	return &Recorder{o: o}, nil
}

// Record merges st into the Store and calls OnFinal when st first made the message's state
// final. It fails only when the Store does (or st has no message id).
func (r *Recorder) Record(ctx context.Context, st *connector.MessageStatus) error {
	_, err := r.merge(ctx, st, time.Time{})
	return err
}

// merge stores st and fires OnFinal; it returns the merged status, with st's To. A zero sentAt
// marks a vendor's report (checked now), a set one the send's own.
func (r *Recorder) merge(ctx context.Context, st *connector.MessageStatus, sentAt time.Time) (*connector.MessageStatus, error) {
	if st == nil || st.MessageID == "" {
		return nil, errors.New("deliverystatus: a report without a message id")
	}
	rec := Record{Status: *st, SentAt: sentAt}
	if sentAt.IsZero() {
		rec.CheckedAt = r.o.Now()
	}
	rec.Status.To = ""
	m, err := r.o.Store.Merge(ctx, rec)
	if err != nil {
		r.storeError(err)
		return nil, err
	}
	out := m.Record.Status
	out.To = st.To
	if m.BecameFinal && r.o.OnFinal != nil {
		final := out
		r.o.OnFinal(ctx, &final, m.Record.SentAt)
	}
	return &out, nil
}

// storeError reports err to OnStoreError.
func (r *Recorder) storeError(err error) {
	if r.o.OnStoreError != nil {
		r.o.OnStoreError(err)
	}
}

// Connector is the decorator New returns: it records sends and answers MessageStatus from the
// Store when it can. ValidateConfig and Metadata are the wrapped connector's.
type Connector struct {
	connector.Forward
	rec *Recorder
}

var _ connector.StatusReader = (*Connector)(nil)

// New wraps next; see the package documentation.
func New(next connector.SmsConnector, o Options) (*Connector, error) {
	if next == nil {
		return nil, errors.New("deliverystatus: no connector to wrap")
	}
	rec, err := NewRecorder(o)
	if err != nil {
		return nil, err
	}
	return &Connector{Forward: connector.Forward{Next: next}, rec: rec}, nil
}

// Send sends through the wrapped connector and records an accepted message as QUEUED, with the
// time it was sent, the vendor's status word and the segments. A failure to record is told to
// OnStoreError and does not fail the send: the message is on its way.
func (c *Connector) Send(ctx context.Context, msg *connector.Message) (*connector.Receipt, error) {
	r, err := c.Next.Send(ctx, msg)
	if err != nil || r == nil || r.MessageID == "" || !c.rec.o.RecordSends {
		return r, err
	}
	now := c.rec.o.Now()
	_, _ = c.rec.merge(ctx, &connector.MessageStatus{
		MessageID:    r.MessageID,
		State:        connector.DeliveryQueued,
		VendorStatus: r.Status,
		UpdatedAt:    now,
		Segments:     r.Segments,
	}, now)
	return r, nil
}

// MessageStatus answers from the Store when the record is final or was confirmed by the vendor
// within Options.Refresh (a record only the send made is not: the vendor may know more, or be
// unable to tell); otherwise it asks the wrapped connector (connector.ReadStatus), merges its
// answer and returns the merged record, so an answer never goes back to an earlier state than
// one already known. When the vendor fails and a record exists, the record is the answer; a
// connector that cannot tell (NOT_SUPPORTED) stays unable to, whatever the Store holds.
func (c *Connector) MessageStatus(ctx context.Context, messageID string, config json.RawMessage) (*connector.MessageStatus, error) {
	known, err := c.rec.o.Store.Get(ctx, messageID)
	if err != nil {
		c.rec.storeError(err)
		known = nil
	}
	if known != nil && (known.Status.State.Final() || (!known.CheckedAt.IsZero() && c.rec.o.Now().Sub(known.CheckedAt) < c.rec.o.Refresh)) {
		st := known.Status
		return &st, nil
	}
	st, err := connector.ReadStatus(ctx, c.Next, messageID, config)
	if err != nil {
		if known == nil || connector.ReasonOf(err) == connector.ReasonNotSupported {
			return nil, err
		}
		kst := known.Status
		return &kst, nil
	}
	if st == nil {
		return nil, connector.Errorf(connector.ReasonInternal, "the connector answered no status and no error")
	}
	if st.MessageID == "" {
		st.MessageID = messageID
	}
	merged, err := c.rec.merge(ctx, st, time.Time{})
	if err != nil {
		return st, nil // the vendor's answer, unstored
	}
	return merged, nil
}
