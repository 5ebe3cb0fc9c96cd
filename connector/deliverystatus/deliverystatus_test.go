package deliverystatus_test

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/sms-connector/sms-connector/connector"
	"github.com/sms-connector/sms-connector/connector/deliverystatus"
	"github.com/sms-connector/sms-connector/internal/testutil"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// status is a report of state for message id.
func status(id string, state connector.DeliveryState) connector.MessageStatus {
	return connector.MessageStatus{MessageID: id, State: state, VendorStatus: string(state)}
}

func TestFold(t *testing.T) {
	t0 := time.Unix(1000, 0)
	rec := func(state connector.DeliveryState, sent time.Time) *deliverystatus.Record {
		return &deliverystatus.Record{Status: status("SM1", state), SentAt: sent, CheckedAt: t0}
	}
	tests := []struct {
		name      string
		old       *deliverystatus.Record
		report    deliverystatus.Record
		wantState connector.DeliveryState
		want      deliverystatus.FoldResult
	}{
		{"new record", nil, *rec(connector.DeliverySent, time.Time{}), connector.DeliverySent, deliverystatus.Advanced},
		{"forward", rec(connector.DeliveryQueued, t0), *rec(connector.DeliverySent, time.Time{}), connector.DeliverySent, deliverystatus.Advanced},
		{"queued to final", rec(connector.DeliveryQueued, t0), *rec(connector.DeliveryUndelivered, time.Time{}), connector.DeliveryUndelivered, deliverystatus.Advanced},
		{"back from delivered", rec(connector.DeliveryDelivered, t0), *rec(connector.DeliverySent, time.Time{}), connector.DeliveryDelivered, deliverystatus.Ignored},
		{"back from sent", rec(connector.DeliverySent, t0), *rec(connector.DeliveryQueued, time.Time{}), connector.DeliverySent, deliverystatus.Ignored},
		{"duplicate", rec(connector.DeliveryDelivered, t0), *rec(connector.DeliveryDelivered, time.Time{}), connector.DeliveryDelivered, deliverystatus.Confirmed},
		{"another final", rec(connector.DeliveryDelivered, t0), *rec(connector.DeliveryFailed, time.Time{}), connector.DeliveryDelivered, deliverystatus.Ignored},
		{"unknown never replaces", rec(connector.DeliveryQueued, t0), *rec(connector.DeliveryUnknown, time.Time{}), connector.DeliveryQueued, deliverystatus.Ignored},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, res := deliverystatus.Fold(tt.old, tt.report)
			if got.Status.State != tt.wantState || res != tt.want {
				t.Errorf("Fold = %s, %v; want %s, %v", got.Status.State, res, tt.wantState, tt.want)
			}
			if tt.old != nil && !tt.old.SentAt.IsZero() && !got.SentAt.Equal(tt.old.SentAt) {
				t.Errorf("SentAt = %v, want the old %v kept", got.SentAt, tt.old.SentAt)
			}
		})
	}
	// The same state fills in what the record lacks and keeps what it has.
	old := &deliverystatus.Record{Status: connector.MessageStatus{MessageID: "SM1", State: connector.DeliveryDelivered, Segments: 2, UpdatedAt: t0}}
	got, _ := deliverystatus.Fold(old, deliverystatus.Record{Status: connector.MessageStatus{MessageID: "SM1", State: connector.DeliveryDelivered, Price: "-0.0079", PriceUnit: "USD", UpdatedAt: t0.Add(time.Hour)}})
	if got.Status.Segments != 2 || got.Status.Price != "-0.0079" || got.Status.PriceUnit != "USD" || !got.Status.UpdatedAt.Equal(t0) {
		t.Errorf("confirmed record = %+v, want segments kept, price filled in, UpdatedAt of the first report", got.Status)
	}
}

func TestMemoryBoundedAndExpiring(t *testing.T) {
	ctx := context.Background()
	clock := testutil.NewClock()
	m, err := deliverystatus.NewMemory(deliverystatus.MemoryOptions{TTL: time.Hour, MaxEntries: 3, Now: clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 4 {
		st := status(fmt.Sprintf("SM%d", i), connector.DeliveryQueued)
		st.To = "+14155550100"
		if _, err := m.Merge(ctx, deliverystatus.Record{Status: st, CheckedAt: clock.Now()}); err != nil {
			t.Fatal(err)
		}
		clock.Advance(time.Minute)
	}
	if m.Len() != 3 {
		t.Errorf("Len = %d, want the bound 3", m.Len())
	}
	if r, _ := m.Get(ctx, "SM0"); r != nil {
		t.Errorf("SM0 = %+v, want dropped for SM3 (the oldest change goes first)", r)
	}
	r, _ := m.Get(ctx, "SM3")
	if r == nil || r.Status.State != connector.DeliveryQueued {
		t.Fatalf("SM3 = %+v, want QUEUED", r)
	}
	if r.Status.To != "" {
		t.Errorf("stored To = %q, want none: a store keeps no phone number", r.Status.To)
	}
	clock.Advance(time.Hour)
	if r, _ := m.Get(ctx, "SM3"); r != nil {
		t.Errorf("SM3 after its TTL = %+v, want gone", r)
	}
	if _, err := m.Merge(ctx, deliverystatus.Record{Status: status("", connector.DeliverySent)}); connector.ReasonOf(err) != connector.ReasonInvalidRequest {
		t.Errorf("Merge without an id: %v, want INVALID_REQUEST", err)
	}
}

// vendor is a connector whose delivery statuses the test sets: it stands for a vendor's
// connector, whose fetch it counts.
type vendor struct {
	mu      sync.Mutex
	status  map[string]connector.MessageStatus
	fail    error
	fetches int
	sent    int
}

func (v *vendor) Send(_ context.Context, msg *connector.Message) (*connector.Receipt, error) {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.sent++
	return &connector.Receipt{MessageID: fmt.Sprintf("SM%d", v.sent), Status: "queued", Segments: 1, To: msg.To}, nil
}

func (v *vendor) ValidateConfig(context.Context, json.RawMessage) ([]connector.Violation, error) {
	return nil, nil
}

func (v *vendor) Metadata(context.Context) (*connector.Metadata, error) {
	return &connector.Metadata{ID: "vendor"}, nil
}

func (v *vendor) MessageStatus(_ context.Context, id string, _ json.RawMessage) (*connector.MessageStatus, error) {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.fetches++
	if v.fail != nil {
		return nil, v.fail
	}
	st, ok := v.status[id]
	if !ok {
		return nil, connector.Errorf(connector.ReasonMessageNotFound, "no message %s", id)
	}
	return &st, nil
}

func (v *vendor) set(id string, state connector.DeliveryState, err error) {
	v.mu.Lock()
	defer v.mu.Unlock()
	st := status(id, state)
	st.To = "+14155550100"
	v.status[id], v.fail = st, err
}

func (v *vendor) fetched() int {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.fetches
}

// finals records OnFinal's calls.
type finals struct {
	mu    sync.Mutex
	calls []connector.MessageStatus
	sent  []time.Time
}

func (f *finals) on(_ context.Context, st *connector.MessageStatus, sentAt time.Time) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, *st)
	f.sent = append(f.sent, sentAt)
}

func TestConnector(t *testing.T) {
	ctx := context.Background()
	clock := testutil.NewClock()
	store, err := deliverystatus.NewMemory(deliverystatus.MemoryOptions{Now: clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	v := &vendor{status: map[string]connector.MessageStatus{}}
	var f finals
	c, err := deliverystatus.New(v, deliverystatus.Options{Store: store, OnFinal: f.on, RecordSends: true, Refresh: time.Minute, Now: clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	sentAt := clock.Now()
	r, err := c.Send(ctx, &connector.Message{To: "+14155550100"})
	if err != nil {
		t.Fatal(err)
	}
	read := func() connector.DeliveryState {
		t.Helper()
		st, err := c.MessageStatus(ctx, r.MessageID, nil)
		if err != nil {
			t.Fatalf("MessageStatus: %v", err)
		}
		return st.State
	}

	// Just sent: only the send is known, so the vendor is asked; its answer holds for Refresh.
	v.set(r.MessageID, connector.DeliveryQueued, nil)
	for range 2 {
		if got := read(); got != connector.DeliveryQueued || v.fetched() != 1 {
			t.Errorf("just sent: %s after %d fetches, want QUEUED from one fetch", got, v.fetched())
		}
	}
	// Past Refresh, the vendor is asked again and its answer stored.
	v.set(r.MessageID, connector.DeliverySent, nil)
	clock.Advance(2 * time.Minute)
	if got := read(); got != connector.DeliverySent || v.fetched() != 2 {
		t.Errorf("after Refresh: %s after %d fetches, want SENT from a second fetch", got, v.fetched())
	}
	// A vendor failure answers what is known.
	clock.Advance(2 * time.Minute)
	v.set(r.MessageID, connector.DeliverySent, connector.Errorf(connector.ReasonProviderUnavailable, "down"))
	if got := read(); got != connector.DeliverySent {
		t.Errorf("vendor down: %s, want the stored SENT", got)
	}
	// Final: OnFinal once, with the vendor's To and the send's time; then never asked again.
	clock.Advance(2 * time.Minute)
	v.set(r.MessageID, connector.DeliveryDelivered, nil)
	if got := read(); got != connector.DeliveryDelivered {
		t.Errorf("delivered: %s", got)
	}
	before := v.fetched()
	clock.Advance(time.Hour)
	if got := read(); got != connector.DeliveryDelivered || v.fetched() != before {
		t.Errorf("final: %s after %d more fetches, want DELIVERED from the store", got, v.fetched()-before)
	}
	// A report going back is ignored.
	rec, _ := deliverystatus.NewRecorder(deliverystatus.Options{Store: store, OnFinal: f.on, Now: clock.Now})
	back := status(r.MessageID, connector.DeliverySent)
	if err := rec.Record(ctx, &back); err != nil {
		t.Fatal(err)
	}
	if got := read(); got != connector.DeliveryDelivered {
		t.Errorf("after a late SENT: %s, want DELIVERED", got)
	}
	if len(f.calls) != 1 || f.calls[0].To != "+14155550100" || !f.sent[0].Equal(sentAt) {
		t.Errorf("OnFinal calls %+v at %v, want one with To and the send time %v", f.calls, f.sent, sentAt)
	}

	// An id neither the store nor the vendor knows: the vendor's MESSAGE_NOT_FOUND.
	if _, err := c.MessageStatus(ctx, "SMnone", nil); connector.ReasonOf(err) != connector.ReasonMessageNotFound {
		t.Errorf("unknown id: %v, want MESSAGE_NOT_FOUND", err)
	}
}

// sendOnly is a connector that cannot tell a status.
type sendOnly struct{ vendor }

func (*sendOnly) MessageStatus() {} // hides vendor's: not a StatusReader

func TestConnectorNotSupported(t *testing.T) {
	store, _ := deliverystatus.NewMemory(deliverystatus.MemoryOptions{})
	next := struct{ connector.SmsConnector }{&sendOnly{vendor{status: map[string]connector.MessageStatus{}}}}
	c, err := deliverystatus.New(next, deliverystatus.Options{Store: store, RecordSends: true})
	if err != nil {
		t.Fatal(err)
	}
	r, err := c.Send(context.Background(), &connector.Message{To: "+14155550100"})
	if err != nil {
		t.Fatal(err)
	}
	// The store knows the message, yet a connector that cannot tell stays unable to.
	if _, err := c.MessageStatus(context.Background(), r.MessageID, nil); connector.ReasonOf(err) != connector.ReasonNotSupported {
		t.Errorf("MessageStatus: %v, want NOT_SUPPORTED", err)
	}
}

// TestSendsNotRecorded: without status callbacks (RecordSends off) a send writes nothing to the
// store, and a status read asks the vendor and keeps its answer.
func TestSendsNotRecorded(t *testing.T) {
	store, _ := deliverystatus.NewMemory(deliverystatus.MemoryOptions{})
	v := &vendor{status: map[string]connector.MessageStatus{}}
	c, err := deliverystatus.New(v, deliverystatus.Options{Store: store})
	if err != nil {
		t.Fatal(err)
	}
	r, err := c.Send(context.Background(), &connector.Message{To: "+14155550100"})
	if err != nil {
		t.Fatal(err)
	}
	if n := store.Len(); n != 0 {
		t.Fatalf("%d records after a send without callbacks, want none", n)
	}
	v.status[r.MessageID] = connector.MessageStatus{MessageID: r.MessageID, State: connector.DeliverySent, VendorStatus: "sent"}
	st, err := c.MessageStatus(context.Background(), r.MessageID, nil)
	if err != nil || st.State != connector.DeliverySent {
		t.Fatalf("MessageStatus = %+v, %v; want the vendor's SENT", st, err)
	}
	if n := store.Len(); n != 1 {
		t.Errorf("%d records after a fetch, want the fetched one", n)
	}
}
