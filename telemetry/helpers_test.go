package telemetry

import (
	"io"
	"net/http/httptest"
	"testing"

	"go.opentelemetry.io/otel/trace"

	"github.com/sms-connector/sms-connector/connector"
)

// newSendMetrics wraps next in a SendMetrics into m, as connector "fake-sms".
func newSendMetrics(t *testing.T, next connector.SmsConnector, m *Metrics) *SendMetrics {
	t.Helper()
	c, err := NewSendMetrics(next, SendMetricsOptions{Metrics: m, ID: "fake-sms"})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// newProviderTelemetry wraps vendor in a ProviderTelemetry into m and tp, as connector
// "fake-sms".
func newProviderTelemetry(t *testing.T, vendor connector.SmsConnector, m *Metrics, tp trace.TracerProvider) *ProviderTelemetry {
	t.Helper()
	c, err := NewProviderTelemetry(vendor, ProviderOptions{Metrics: m, TracerProvider: tp, ID: "fake-sms"})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// scrapeHandler returns what m's handler serves.
func scrapeHandler(t *testing.T, m *Metrics) string {
	t.Helper()
	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest("GET", MetricsPath, nil))
	if rec.Code != 200 {
		t.Fatalf("GET %s: %d", MetricsPath, rec.Code)
	}
	b, _ := io.ReadAll(rec.Body)
	return string(b)
}
