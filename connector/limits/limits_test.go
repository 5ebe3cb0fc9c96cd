package limits

import (
	"context"
	"encoding/json"
	"errors"
	"sync"
	"testing"

	"go.uber.org/goleak"

	"github.com/sms-connector/sms-connector/connector"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// fake records the messages it is asked to send; block, when set, holds every Send until it is
// closed, and started receives one value per Send that has begun.
type fake struct {
	mu      sync.Mutex
	sent    []*connector.Message
	block   chan struct{}
	started chan struct{}
}

func (f *fake) Send(ctx context.Context, msg *connector.Message) (*connector.Receipt, error) {
	f.mu.Lock()
	f.sent = append(f.sent, msg)
	f.mu.Unlock()
	if f.started != nil {
		f.started <- struct{}{}
	}
	if f.block != nil {
		<-f.block
	}
	return &connector.Receipt{MessageID: "M1"}, nil
}

func (f *fake) ValidateConfig(context.Context, json.RawMessage) ([]connector.Violation, error) {
	return nil, nil
}

func (f *fake) Metadata(context.Context) (*connector.Metadata, error) {
	return &connector.Metadata{ID: "fake"}, nil
}

func (f *fake) count() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.sent)
}

// message is a SignIn message; the limit does not read it.
func message() *connector.Message {
	return &connector.Message{To: "+14155550123", UsageType: connector.UsageSignIn, Payload: connector.Payload{Code: "123456"}}
}

func TestConcurrency(t *testing.T) {
	const maxInFlight = 3
	f := &fake{block: make(chan struct{}), started: make(chan struct{}, maxInFlight)}
	c, err := New(f, Options{MaxConcurrent: maxInFlight})
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	errs := make(chan error, maxInFlight)
	for range maxInFlight {
		wg.Go(func() {
			_, err := c.Send(context.Background(), message())
			errs <- err
		})
	}
	for range maxInFlight {
		<-f.started
	}
	if c.InFlight() != maxInFlight {
		t.Fatalf("InFlight = %d, want %d", c.InFlight(), maxInFlight)
	}
	_, err = c.Send(context.Background(), message())
	var ce *connector.Error
	if !errors.As(err, &ce) || ce.Reason != connector.ReasonOverloaded || ce.RetryAfter != OverloadedRetryAfter {
		t.Fatalf("Send beyond the limit = %v, want OVERLOADED with a RetryAfter", err)
	}
	if f.count() != maxInFlight {
		t.Errorf("the refused send reached the vendor")
	}
	close(f.block)
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Errorf("a send within the limit failed: %v", err)
		}
	}
	f.block = nil
	f.started = nil
	if _, err := c.Send(context.Background(), message()); err != nil || c.InFlight() != 0 {
		t.Errorf("after the others finished: %v, %d in flight", err, c.InFlight())
	}
}

func TestNew(t *testing.T) {
	if _, err := New(nil, Options{}); err == nil {
		t.Error("nil connector accepted")
	}
	if _, err := New(&fake{}, Options{MaxConcurrent: -1}); err == nil {
		t.Error("negative MaxConcurrent accepted")
	}
	c, _ := New(&fake{}, Options{})
	if md, err := c.Metadata(context.Background()); err != nil || md.ID != "fake" {
		t.Errorf("Metadata = %v, %v", md, err)
	}
	if vs, err := c.ValidateConfig(context.Background(), nil); err != nil || vs != nil {
		t.Errorf("ValidateConfig = %v, %v", vs, err)
	}
}
