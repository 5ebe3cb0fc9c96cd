package telemetry

import (
	"net/http"
	"strconv"
	"strings"
	"time"

	grpcprom "github.com/grpc-ecosystem/go-grpc-middleware/providers/prometheus"
	"github.com/nyaruka/phonenumbers"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"google.golang.org/grpc"

	"github.com/sms-connector/sms-connector/connector"
)

// The names of the connector's own metrics (the gRPC server metrics are go-grpc-middleware's:
// grpc_server_started_total, grpc_server_handled_total, grpc_server_msg_received_total,
// grpc_server_msg_sent_total, grpc_server_handling_seconds).
const (
	// MetricMessages counts the sends that reached the connector, by outcome.
	MetricMessages = "sms_connector_messages_total"
	// MetricRefusals counts the sends refused by the connector's own limits before any vendor
	// was called.
	MetricRefusals = "sms_connector_rate_limit_refusals_total"
	// MetricProviderErrors counts the failures the vendor (or the way to it) reported.
	MetricProviderErrors = "sms_connector_provider_errors_total"
	// MetricProviderDuration is the histogram of the vendor call's duration.
	MetricProviderDuration = "sms_connector_provider_request_duration_seconds"
	// MetricInFlight is the number of sends in progress.
	MetricInFlight = "sms_connector_sends_in_flight"
	// MetricHTTPRequests counts the requests of the HTTP listener (the Logto bridge), by route,
	// method and HTTP status: the transport="http" counterpart of grpc_server_handled_total.
	MetricHTTPRequests = "sms_connector_http_requests_total"
	// MetricHTTPDuration is the histogram of the HTTP listener's request durations.
	MetricHTTPDuration = "sms_connector_http_request_duration_seconds"
	// MetricStoreErrors counts the failures of a shared store (Redis), by the layer that met
	// it and the policy it applied.
	MetricStoreErrors = "sms_connector_store_errors_total"
	// MetricDeliveries counts the messages whose delivery reached a final state, by state.
	MetricDeliveries = "sms_connector_delivery_total"
	// MetricDeliveryDuration is the histogram of the time from a send to its final state.
	MetricDeliveryDuration = "sms_connector_delivery_seconds"
	// MetricDeliveryTrips counts the abuse guard's delivery-feedback trips, by scope.
	MetricDeliveryTrips = "sms_connector_delivery_trips_total"
)

// Label values the metrics use besides reasons, usage types and calling codes.
const (
	// OutcomeOK is the outcome of a send the vendor accepted.
	OutcomeOK = "ok"
	// unknownLabel stands for a value that is absent or not one the metrics accept.
	unknownLabel = "unknown"
	// noCode is the provider_code of a vendor failure without a vendor error code (a
	// timeout, a refused connection, an HTML error page).
	noCode = "none"
)

// Metrics are the Prometheus metrics of one connector process, in a Registry of their own
// (never Prometheus' global default one): go-grpc-middleware's gRPC server metrics, the
// connector's send metrics (see SendMetrics and ProviderTelemetry), and the Go runtime and
// process collectors. Labels never carry a phone number or a secret: a destination is its
// country calling code, an outcome is a reason from a fixed set.
type Metrics struct {
	reg  *prometheus.Registry
	grpc *grpcprom.ServerMetrics

	messages         *prometheus.CounterVec   // connector, transport, usage_type, country_code, outcome
	refusals         *prometheus.CounterVec   // connector, transport, reason
	providerErrors   *prometheus.CounterVec   // connector, provider, provider_code, reason
	providerDuration *prometheus.HistogramVec // connector, outcome
	inFlight         *prometheus.GaugeVec     // connector
	httpRequests     *prometheus.CounterVec   // route, method, code
	httpDuration     *prometheus.HistogramVec // route, method, code
	storeErrors      *prometheus.CounterVec   // layer, policy
	deliveries       *prometheus.CounterVec   // connector, country_code, state
	deliveryDuration *prometheus.HistogramVec // connector, state
	deliveryTrips    *prometheus.CounterVec   // scope
}

// NewMetrics returns the metrics, registered in a new Registry.
func NewMetrics() *Metrics {
	m := &Metrics{
		reg: prometheus.NewRegistry(),
		grpc: grpcprom.NewServerMetrics(grpcprom.WithServerHandlingTimeHistogram(
			grpcprom.WithHistogramBuckets([]float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30}))),
		messages: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: MetricMessages,
			Help: "Sends that reached the connector, by connector id, transport (\"grpc\": SendMessage; \"http\": the Logto bridge; \"inprocess\": a Go program calling the connector directly), usage type, destination country calling code and outcome (\"ok\", or the error reason, e.g. RATE_LIMITED, PROVIDER_REJECTED).",
		}, []string{"connector", "transport", "usage_type", "country_code", "outcome"}),
		refusals: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: MetricRefusals,
			Help: "Sends the connector's own limits refused before any vendor was called, by transport (\"grpc\", \"http\", \"inprocess\") and reason: RATE_LIMITED and COUNTRY_NOT_PERMITTED (the abuse guard, its delivery feedback's cool-downs and full stores included), OVERLOADED (the concurrency limit), STORE_UNAVAILABLE (a shared store that failed).",
		}, []string{"connector", "transport", "reason"}),
		providerErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: MetricProviderErrors,
			Help: "Failures reported by the SMS vendor or on the way to it, by provider, the vendor's error code (\"none\" when it gave none: a timeout, a refused connection, an HTML error page) and reason.",
		}, []string{"connector", "provider", "provider_code", "reason"}),
		providerDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    MetricProviderDuration,
			Help:    "Duration of the vendor call of each send that reached the vendor, by outcome; it includes the driver's own retries and their backoff (Twilio: 429 and failed connections).",
			Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
		}, []string{"connector", "outcome"}),
		inFlight: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: MetricInFlight,
			Help: "Sends in progress through the connector.",
		}, []string{"connector"}),
		httpRequests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: MetricHTTPRequests,
			Help: "Requests of the HTTP listener (--http-listen: the Logto bridge and the vendor's status callbacks), by route, method and HTTP status code.",
		}, []string{"route", "method", "code"}),
		httpDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    MetricHTTPDuration,
			Help:    "Duration of the HTTP listener's requests, by route, method and HTTP status code.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
		}, []string{"route", "method", "code"}),
		storeErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: MetricStoreErrors,
			Help: "Failures of the shared store (Redis: unreachable, timed out, answering errors), by layer (\"guard\", \"idempotency\", \"status\") and the policy applied (\"refuse\": the send was refused; \"allow\": it went on without the layer).",
		}, []string{"layer", "policy"}),
		deliveries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: MetricDeliveries,
			Help: "Messages whose delivery reached a final state (DELIVERED, UNDELIVERED, FAILED), by connector id, destination country calling code (\"unknown\" when the report did not carry the recipient) and state; each message counts once, across replicas sharing a store.",
		}, []string{"connector", "country_code", "state"}),
		deliveryDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    MetricDeliveryDuration,
			Help:    "Time from a send to its final delivery state, by final state, for the messages whose send time is known (sent by this process, or through a shared store).",
			Buckets: []float64{1, 2, 5, 10, 20, 30, 60, 120, 300, 600, 1800, 3600, 14400},
		}, []string{"connector", "state"}),
		deliveryTrips: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: MetricDeliveryTrips,
			Help: "Times the abuse guard paused a scope (\"range\": a number range, \"country\") because most of its messages were not delivered.",
		}, []string{"scope"}),
	}
	m.reg.MustRegister(m.grpc, m.messages, m.refusals, m.providerErrors, m.providerDuration, m.inFlight, m.httpRequests, m.httpDuration, m.storeErrors,
		m.deliveries, m.deliveryDuration, m.deliveryTrips,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// StoreError counts one failure of the shared store met by layer under policy. A nil
// *Metrics counts nothing.
func (m *Metrics) StoreError(layer, policy string) {
	if m == nil {
		return
	}
	m.storeErrors.WithLabelValues(layer, policy).Inc()
}

// DeliveryTrip counts one trip of the guard's delivery feedback for scope ("range",
// "country"). A nil *Metrics counts nothing.
func (m *Metrics) DeliveryTrip(scope string) {
	if m == nil {
		return
	}
	m.deliveryTrips.WithLabelValues(scope).Inc()
}

// Delivery counts a message of connectorID whose delivery reached the final state of st, and
// observes the time from sentAt to st.UpdatedAt (not when sentAt or UpdatedAt is unknown). A nil
// *Metrics counts nothing.
func (m *Metrics) Delivery(connectorID string, st *connector.MessageStatus, sentAt time.Time) {
	if m == nil || st == nil || !st.State.Final() {
		return
	}
	cc := unknownLabel
	if st.To != "" {
		cc = callingCode(st.To)
	}
	m.deliveries.WithLabelValues(connectorID, cc, string(st.State)).Inc()
	if !sentAt.IsZero() && !st.UpdatedAt.IsZero() {
		m.deliveryDuration.WithLabelValues(connectorID, string(st.State)).Observe(max(st.UpdatedAt.Sub(sentAt), 0).Seconds())
	}
}

// Registry returns the registry holding every metric, to register more or to gather them.
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// Handler returns the HTTP handler that serves the metrics in Prometheus' text format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{Registry: m.reg})
}

// ServerOptions returns the gRPC server options that count every RPC (go-grpc-middleware's
// server metrics), to append to server.Options.ServerOptions.
func (m *Metrics) ServerOptions() []grpc.ServerOption {
	return []grpc.ServerOption{
		grpc.ChainUnaryInterceptor(m.grpc.UnaryServerInterceptor()),
		grpc.ChainStreamInterceptor(m.grpc.StreamServerInterceptor()),
	}
}

// InstrumentHTTP wraps the handler of an HTTP route (its path) so that its requests are
// counted and timed, by method and status code.
func (m *Metrics) InstrumentHTTP(route string, h http.Handler) http.Handler {
	l := prometheus.Labels{"route": route}
	return promhttp.InstrumentHandlerDuration(m.httpDuration.MustCurryWith(l),
		promhttp.InstrumentHandlerCounter(m.httpRequests.MustCurryWith(l), h))
}

// usageLabel is the usage type as a label value: one of the known usage types, or "unknown".
func usageLabel(u connector.UsageType) string {
	if u.Valid() {
		return string(u)
	}
	return unknownLabel
}

// outcomeLabel is "ok" for a successful send, else the reason of err ("INTERNAL" for an error
// that is not a *connector.Error).
func outcomeLabel(err error) string {
	if err == nil {
		return OutcomeOK
	}
	return string(connector.ReasonOf(err))
}

// callingCode returns the country calling code of a phone number ("1" for +1 415..., "33" for
// +33 6...), the only part of a number a label or an attribute ever carries; "unknown" when
// the number is not E.164 or its code is not assigned.
//
// The calling code, rather than the region: +1, +7, +44 and a few more are shared by several
// regions, and telling those apart takes a libphonenumber parse of the whole number (20 to 35
// µs, some 50 allocations), as much as the rest of the connector's own work on a send.
func callingCode(to string) string {
	if !strings.HasPrefix(to, "+") {
		n, err := connector.NormalizePhone(to)
		if err != nil {
			return unknownLabel
		}
		to = n
	}
	digits := to[1:]
	for l := 1; l <= 3 && l < len(digits); l++ {
		cc, err := strconv.Atoi(digits[:l])
		if err != nil || cc == 0 {
			return unknownLabel
		}
		if phonenumbers.GetRegionCodeForCountryCode(cc) != phonenumbers.UNKNOWN_REGION {
			return strconv.Itoa(cc) // not a substring: a label must not keep the number alive
		}
	}
	return unknownLabel
}
