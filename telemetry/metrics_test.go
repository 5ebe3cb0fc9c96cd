package telemetry

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"sync"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"go.uber.org/goleak"

	"github.com/sms-connector/sms-connector/connector"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// fakeVendor answers each Send with the next of its answers, and can hold a Send until
// released to observe it in flight.
type fakeVendor struct {
	mu      sync.Mutex
	errs    []error
	hold    chan struct{} // when set, Send waits for it
	entered chan struct{} // when set, Send signals it is in
	closed  bool
}

func (f *fakeVendor) Send(context.Context, *connector.Message) (*connector.Receipt, error) {
	if f.entered != nil {
		f.entered <- struct{}{}
	}
	if f.hold != nil {
		<-f.hold
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	var err error
	if len(f.errs) > 0 {
		err, f.errs = f.errs[0], f.errs[1:]
	}
	if err != nil {
		return nil, err
	}
	return &connector.Receipt{MessageID: "SM123", Segments: 1, Encoding: connector.EncodingGSM7}, nil
}

func (f *fakeVendor) ValidateConfig(context.Context, json.RawMessage) ([]connector.Violation, error) {
	return []connector.Violation{{Field: "x", Description: "y"}}, nil
}

func (f *fakeVendor) Metadata(context.Context) (*connector.Metadata, error) {
	return &connector.Metadata{ID: "fake-sms"}, nil
}

func (f *fakeVendor) Close() error { f.closed = true; return nil }

func msgTo(to string, u connector.UsageType) *connector.Message {
	return &connector.Message{To: to, UsageType: u, Payload: connector.Payload{Code: "123456"}}
}

func TestCallingCode(t *testing.T) {
	for in, want := range map[string]string{
		"+14155550123":   "1",
		"+33612345678":   "33",
		"+447911123456":  "44",
		"+8613800138000": "86",
		"+3548001234":    "354",
		"+2125551234":    "212",
		"+80012345678":   "800",
		"0033612345678":  "33", // normalised first
		"+999123456":     unknownLabel,
		"+0123456":       unknownLabel,
		"":               unknownLabel,
		"+":              unknownLabel,
		"not a number":   unknownLabel,
	} {
		if got := callingCode(in); got != want {
			t.Errorf("callingCode(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestSendMetrics(t *testing.T) {
	m := NewMetrics()
	refused := &connector.Error{Reason: connector.ReasonRateLimited, Message: "too many"}
	notPermitted := &connector.Error{Reason: connector.ReasonCountryNotPermitted, Message: "no"}
	vendorGeo := &connector.Error{Reason: connector.ReasonCountryNotPermitted, Message: "geo", Provider: "twilio", ProviderCode: "21408"}
	v := &fakeVendor{errs: []error{nil, refused, notPermitted, vendorGeo, errors.New("untyped")}}
	c := newSendMetrics(t, v, m)
	ctx := context.Background()
	grpcCtx, httpCtx := connector.WithTransport(ctx, connector.TransportGRPC), connector.WithTransport(ctx, connector.TransportHTTP)
	for _, s := range []struct {
		ctx context.Context
		to  string
	}{{grpcCtx, "+14155550123"}, {httpCtx, "+14155550124"}, {grpcCtx, "+33612345678"}, {ctx, "+447911123456"}, {ctx, "+14155550125"}} {
		_, _ = c.Send(s.ctx, msgTo(s.to, connector.UsageSignIn))
	}
	for _, tc := range []struct {
		labels []string
		want   float64
	}{
		{[]string{"fake-sms", "grpc", "SignIn", "1", "ok"}, 1},
		{[]string{"fake-sms", "http", "SignIn", "1", "ok"}, 0},
		{[]string{"fake-sms", "http", "SignIn", "1", "RATE_LIMITED"}, 1},
		{[]string{"fake-sms", "grpc", "SignIn", "33", "COUNTRY_NOT_PERMITTED"}, 1},
		{[]string{"fake-sms", "inprocess", "SignIn", "44", "COUNTRY_NOT_PERMITTED"}, 1},
		{[]string{"fake-sms", "inprocess", "SignIn", "1", "INTERNAL"}, 1},
	} {
		if got := testutil.ToFloat64(m.messages.WithLabelValues(tc.labels...)); got != tc.want {
			t.Errorf("messages%v = %v, want %v", tc.labels, got, tc.want)
		}
	}
	// The vendor's 21408 is not a refusal of the connector's own limits.
	if got := testutil.ToFloat64(m.refusals.WithLabelValues("fake-sms", "http", "RATE_LIMITED")); got != 1 {
		t.Errorf("RATE_LIMITED refusals = %v, want 1", got)
	}
	if got := testutil.ToFloat64(m.refusals.WithLabelValues("fake-sms", "grpc", "COUNTRY_NOT_PERMITTED")); got != 1 {
		t.Errorf("COUNTRY_NOT_PERMITTED refusals = %v, want 1", got)
	}
	if got := testutil.ToFloat64(m.inFlight.WithLabelValues("fake-sms")); got != 0 {
		t.Errorf("in flight = %v after every send returned", got)
	}

	// Pass-through.
	if vs, _ := c.ValidateConfig(ctx, nil); len(vs) != 1 {
		t.Errorf("ValidateConfig not passed through: %v", vs)
	}
	if md, _ := c.Metadata(ctx); md.ID != "fake-sms" {
		t.Errorf("Metadata not passed through: %+v", md)
	}
	if err := c.Close(); err != nil || !v.closed {
		t.Errorf("Close not passed through: %v, closed %v", err, v.closed)
	}
}

func TestInFlight(t *testing.T) {
	m := NewMetrics()
	v := &fakeVendor{hold: make(chan struct{}), entered: make(chan struct{})}
	c := newSendMetrics(t, v, m)
	var wg sync.WaitGroup
	for range 3 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, _ = c.Send(context.Background(), msgTo("+14155550123", connector.UsageRegister))
		}()
		<-v.entered
	}
	if got := testutil.ToFloat64(m.inFlight.WithLabelValues("fake-sms")); got != 3 {
		t.Errorf("in flight = %v, want 3", got)
	}
	close(v.hold)
	wg.Wait()
	if got := testutil.ToFloat64(m.inFlight.WithLabelValues("fake-sms")); got != 0 {
		t.Errorf("in flight = %v after the sends, want 0", got)
	}
}

func TestProviderTelemetryMetrics(t *testing.T) {
	m := NewMetrics()
	local := &connector.Error{Reason: connector.ReasonInvalidConfig, Message: "bad config"}
	rejected := &connector.Error{Reason: connector.ReasonInvalidPhoneNumber, Message: "bad to", Provider: "twilio", ProviderCode: "21211"}
	timeout := &connector.Error{Reason: connector.ReasonProviderTimeout, Message: "slow", Provider: "twilio"}
	v := &fakeVendor{errs: []error{nil, local, rejected, timeout}}
	c := newProviderTelemetry(t, v, m, nil)
	for range 4 {
		_, _ = c.Send(context.Background(), msgTo("+14155550123", connector.UsageSignIn))
	}
	// The local failure is no vendor call: three observations.
	if n := testutil.CollectAndCount(m.providerDuration); n != 3 {
		t.Errorf("%d duration series, want 3 (ok, INVALID_PHONE_NUMBER, PROVIDER_TIMEOUT)", n)
	}
	for _, outcome := range []string{"ok", "INVALID_PHONE_NUMBER", "PROVIDER_TIMEOUT"} {
		if got := histogramCount(t, m, "fake-sms", outcome); got != 1 {
			t.Errorf("duration count for %s = %d, want 1", outcome, got)
		}
	}
	if got := testutil.ToFloat64(m.providerErrors.WithLabelValues("fake-sms", "twilio", "21211", "INVALID_PHONE_NUMBER")); got != 1 {
		t.Errorf("provider errors 21211 = %v", got)
	}
	if got := testutil.ToFloat64(m.providerErrors.WithLabelValues("fake-sms", "twilio", "none", "PROVIDER_TIMEOUT")); got != 1 {
		t.Errorf("provider errors without a code = %v", got)
	}
	if n := testutil.CollectAndCount(m.providerErrors); n != 2 {
		t.Errorf("%d provider error series, want 2", n)
	}
}

// TestDecoratorsRefuseIncompleteOptions: a decorator that would measure nothing, or nothing
// under a name, is refused when it is made, not found out on the first send.
func TestDecoratorsRefuseIncompleteOptions(t *testing.T) {
	m, v := NewMetrics(), &fakeVendor{}
	for _, tc := range []struct {
		name string
		new  func() error
		want string
	}{
		{"SendMetrics of no connector", func() error { _, err := NewSendMetrics(nil, SendMetricsOptions{Metrics: m, ID: "x"}); return err }, "no connector"},
		{"SendMetrics without Metrics", func() error { _, err := NewSendMetrics(v, SendMetricsOptions{ID: "x"}); return err }, "no Metrics"},
		{"SendMetrics without ID", func() error { _, err := NewSendMetrics(v, SendMetricsOptions{Metrics: m}); return err }, "no connector ID"},
		{"ProviderTelemetry of no vendor", func() error { _, err := NewProviderTelemetry(nil, ProviderOptions{Metrics: m, ID: "x"}); return err }, "no vendor"},
		{"ProviderTelemetry with nothing on", func() error { _, err := NewProviderTelemetry(v, ProviderOptions{ID: "x"}); return err }, "neither Metrics nor"},
		{"ProviderTelemetry without ID", func() error { _, err := NewProviderTelemetry(v, ProviderOptions{Metrics: m}); return err }, "no connector ID"},
	} {
		if err := tc.new(); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want one saying %q", tc.name, err, tc.want)
		}
	}
}

// histogramCount returns the sample count of the provider duration histogram for outcome.
func histogramCount(t *testing.T, m *Metrics, id, outcome string) uint64 {
	t.Helper()
	mfs, err := m.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != MetricProviderDuration {
			continue
		}
		for _, s := range mf.GetMetric() {
			labels := map[string]string{}
			for _, l := range s.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			if labels["connector"] == id && labels["outcome"] == outcome {
				return s.GetHistogram().GetSampleCount()
			}
		}
	}
	return 0
}

func TestMetricsHandlerServesEverySeries(t *testing.T) {
	m := NewMetrics()
	c := newSendMetrics(t, newProviderTelemetry(t, &fakeVendor{}, m, nil), m)
	if _, err := c.Send(context.Background(), msgTo("+14155550123", connector.UsageSignIn)); err != nil {
		t.Fatal(err)
	}
	body := scrapeHandler(t, m)
	for _, name := range []string{MetricMessages, MetricProviderDuration + "_count", MetricInFlight, "go_goroutines", "process_resident_memory_bytes"} {
		if !strings.Contains(body, "\n"+name) {
			t.Errorf("the metrics lack %s", name)
		}
	}
	if strings.Contains(body, "4155550123") {
		t.Error("the metrics carry the phone number")
	}
}
