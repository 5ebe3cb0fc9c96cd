package sdk

import (
	"context"
	"flag"
	"time"

	"go.uber.org/zap"

	"github.com/sms-connector/sms-connector/telemetry"
)

// telemetryOptions are the observability flags: both off by default.
type telemetryOptions struct {
	metricsListen string // --metrics-listen
	otlpEndpoint  string // --otlp-endpoint
}

// register adds the flags to fs.
func (t *telemetryOptions) register(fs *flag.FlagSet) {
	fs.StringVar(&t.metricsListen, "metrics-listen", "", "host:port to serve Prometheus metrics on, at /metrics over plain HTTP (default: no metrics); bind it where only the scraper reaches")
	fs.StringVar(&t.otlpEndpoint, "otlp-endpoint", "", "OTLP/HTTP receiver to export traces to, as a base URL like http://127.0.0.1:4318 (default: OTEL_EXPORTER_OTLP_TRACES_ENDPOINT or OTEL_EXPORTER_OTLP_ENDPOINT; none set: no tracing)")
}

// telemetryShutdownGrace bounds the flush of the last spans and the metrics listener's stop.
const telemetryShutdownGrace = 5 * time.Second

// startTelemetry starts the metrics listener and the tracer provider o asks for, and returns
// them with the function that stops them. With both off it returns a nil *telemetry.Telemetry,
// whose methods do nothing.
func startTelemetry(ctx context.Context, name string, o telemetryOptions, getenv func(string) string, log *zap.Logger) (*telemetry.Telemetry, func(), error) {
	tel, err := telemetry.Start(ctx, telemetry.Options{
		MetricsListen: o.metricsListen,
		OTLPEndpoint:  o.otlpEndpoint,
		Getenv:        getenv,
		ServiceName:   name,
		Log:           log,
	})
	if err != nil {
		return nil, nil, err
	}
	if tel.Metrics() == nil && tel.TracerProvider() == nil {
		return nil, func() {}, nil
	}
	stop := func() {
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), telemetryShutdownGrace)
		defer cancel()
		if err := tel.Shutdown(sctx); err != nil {
			log.Warn("stopping telemetry", zap.Error(err))
		}
	}
	return tel, stop, nil
}
