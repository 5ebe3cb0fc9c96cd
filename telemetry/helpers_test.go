package telemetry

import (
	"io"
	"net/http/httptest"
	"testing"
)

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
