package limits

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
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
	invalid bool // ValidateConfig reports a problem
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
	if f.invalid {
		return nil, connector.Errorf(connector.ReasonInvalidConfig, "bad config")
	}
	return &connector.Receipt{MessageID: "M1"}, nil
}

func (f *fake) ValidateConfig(context.Context, json.RawMessage) ([]connector.Violation, error) {
	if f.invalid {
		return []connector.Violation{{Field: "templates[0].content", Description: "is too long"}}, nil
	}
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

// message is a SignIn message whose configuration has the given templates.
func message(t *testing.T, templates ...connector.Template) *connector.Message {
	t.Helper()
	cfg, err := json.Marshal(map[string]any{"accountSID": "AC1", "templates": templates})
	if err != nil {
		t.Fatal(err)
	}
	return &connector.Message{To: "+14155550123", UsageType: connector.UsageSignIn,
		Payload: connector.Payload{Code: "123456", Variables: map[string]any{"app": strings.Repeat("a", 100)}}, Config: cfg}
}

func TestSegments(t *testing.T) {
	gsm := func(n int) string { return strings.Repeat("x", n-6) + "{{code}}" } // n characters once rendered
	tests := []struct {
		name      string
		msg       func(t *testing.T) *connector.Message
		max       int
		invalid   bool
		wantSent  bool
		wantError connector.Reason
	}{
		{"10 segments of GSM-7 pass", func(t *testing.T) *connector.Message {
			return message(t, connector.Template{UsageType: connector.UsageSignIn, Content: gsm(1530)})
		}, 10, false, true, ""},
		{"11 segments of GSM-7 are refused", func(t *testing.T) *connector.Message {
			return message(t, connector.Template{UsageType: connector.UsageSignIn, Content: gsm(1531)})
		}, 10, false, false, connector.ReasonMessageTooLong},
		{"UCS-2 counts 67 per part", func(t *testing.T) *connector.Message {
			return message(t, connector.Template{UsageType: connector.UsageSignIn, Content: strings.Repeat("Ж", 135) + "{{code}}"})
		}, 2, false, false, connector.ReasonMessageTooLong},
		{"variables count once rendered", func(t *testing.T) *connector.Message {
			return message(t, connector.Template{UsageType: connector.UsageSignIn, Content: "{{code}} {{app}}"})
		}, 1, false, true, ""},
		{"variables push it over", func(t *testing.T) *connector.Message {
			return message(t, connector.Template{UsageType: connector.UsageSignIn, Content: gsm(100) + "{{app}}"})
		}, 1, false, false, connector.ReasonMessageTooLong},
		{"the Generic template is the one that counts", func(t *testing.T) *connector.Message {
			return message(t, connector.Template{UsageType: connector.UsageRegister, Content: gsm(1000)},
				connector.Template{UsageType: connector.UsageGeneric, Content: gsm(10)})
		}, 1, false, true, ""},
		{"no template: left to the vendor", func(t *testing.T) *connector.Message {
			return message(t, connector.Template{UsageType: connector.UsageRegister, Content: gsm(1000)})
		}, 1, false, true, ""},
		{"a configuration the vendor rejects is its to refuse", func(t *testing.T) *connector.Message {
			return message(t, connector.Template{UsageType: connector.UsageSignIn, Content: gsm(1601)})
		}, 10, true, true, connector.ReasonInvalidConfig},
		{"templates that do not decode: left to the vendor", func(t *testing.T) *connector.Message {
			m := message(t)
			m.Config = json.RawMessage(`{"templates": [{"usageType": "SignIn", "content": 42}]}`)
			return m
		}, 1, false, true, ""},
		{"another vendor's configuration", func(t *testing.T) *connector.Message {
			m := message(t)
			m.Config = json.RawMessage(`{"body": "` + strings.Repeat("x", 2000) + `"}`)
			return m
		}, 1, false, true, ""},
		{"no limit", func(t *testing.T) *connector.Message {
			return message(t, connector.Template{UsageType: connector.UsageSignIn, Content: gsm(1600)})
		}, 0, false, true, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := &fake{invalid: tt.invalid}
			c, err := New(f, Options{MaxSegments: tt.max})
			if err != nil {
				t.Fatal(err)
			}
			_, err = c.Send(context.Background(), tt.msg(t))
			if got := connector.ReasonOf(err); (err == nil) != (tt.wantError == "") || (err != nil && got != tt.wantError) {
				t.Fatalf("Send = %v, want reason %q", err, tt.wantError)
			}
			if sent := f.count() > 0; sent != tt.wantSent {
				t.Errorf("sent = %v, want %v", sent, tt.wantSent)
			}
			var ce *connector.Error
			if tt.wantError == connector.ReasonMessageTooLong && (!errors.As(err, &ce) || !strings.Contains(ce.Message, "segments")) {
				t.Errorf("message %q does not say why", err)
			}
		})
	}
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
			_, err := c.Send(context.Background(), message(t))
			errs <- err
		})
	}
	for range maxInFlight {
		<-f.started
	}
	if c.InFlight() != maxInFlight {
		t.Fatalf("InFlight = %d, want %d", c.InFlight(), maxInFlight)
	}
	_, err = c.Send(context.Background(), message(t))
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
	if _, err := c.Send(context.Background(), message(t)); err != nil || c.InFlight() != 0 {
		t.Errorf("after the others finished: %v, %d in flight", err, c.InFlight())
	}
}

func TestNew(t *testing.T) {
	if _, err := New(nil, Options{}); err == nil {
		t.Error("nil connector accepted")
	}
	if _, err := New(&fake{}, Options{MaxSegments: -1}); err == nil {
		t.Error("negative MaxSegments accepted")
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
