package logtobridge

import (
	"encoding/json"
	"math"
	"net/http"
	"strconv"
	"time"

	rpccode "google.golang.org/genproto/googleapis/rpc/code"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/sms-connector/sms-connector/connector"
	"github.com/sms-connector/sms-connector/internal/protoconv"
)

// ErrorBody is the JSON body of every failure. Logto shows it to the operator as the
// ConnectorError's message, so it holds only what the gRPC status holds: the code, the
// ErrorInfo reason, the bounded status message (never a cause, a credential or a full
// recipient) and whether and when a retry may help.
type ErrorBody struct {
	// Code is the gRPC code's name ("RESOURCE_EXHAUSTED").
	Code string `json:"code"`
	// Reason is the ErrorInfo reason ("RATE_LIMITED"), as in docs/errors.md.
	Reason string `json:"reason"`
	// Message is the status message.
	Message string `json:"message"`
	// Retryable says that the same request may succeed later without sending twice: the
	// status carried RetryInfo, or it is UNAVAILABLE for another reason than
	// PROVIDER_OUTCOME_UNKNOWN.
	Retryable bool `json:"retryable"`
	// RetryAfterSeconds is RetryInfo's delay rounded up to whole seconds (also sent as the
	// Retry-After header); absent without RetryInfo.
	RetryAfterSeconds int64 `json:"retryAfterSeconds,omitempty"`
}

// httpStatusOf is the HTTP status of each gRPC code a send can fail with; a code missing here
// is 500.
var httpStatusOf = map[codes.Code]int{
	codes.InvalidArgument:    http.StatusBadRequest,
	codes.Unauthenticated:    http.StatusUnauthorized,
	codes.FailedPrecondition: http.StatusPreconditionFailed,
	codes.ResourceExhausted:  http.StatusTooManyRequests,
	codes.Unavailable:        http.StatusServiceUnavailable,
	codes.DeadlineExceeded:   http.StatusGatewayTimeout,
	codes.Canceled:           statusClientClosed,
	codes.Internal:           http.StatusInternalServerError,
	codes.NotFound:           http.StatusNotFound,
	codes.Unimplemented:      http.StatusNotImplemented,
}

// httpStatusOfReason overrides httpStatusOf for the vendor's own failures: the vendor could
// not be reached, or answered something that is not an answer (502 Bad Gateway, as for any
// gateway whose upstream failed).
var httpStatusOfReason = map[connector.Reason]int{
	connector.ReasonProviderUnavailable:     http.StatusBadGateway,
	connector.ReasonProviderInvalidResponse: http.StatusBadGateway,
}

// statusClientClosed is the status logged for a request whose client went away before the
// answer (nginx's 499); nobody reads it.
const statusClientClosed = 499

// HTTPStatus returns the HTTP status of a gRPC status with the ErrorInfo reason: see
// httpStatusOf and httpStatusOfReason (docs/logto.md has the table).
func HTTPStatus(code codes.Code, reason connector.Reason) int {
	if s, ok := httpStatusOfReason[reason]; ok {
		return s
	}
	if s, ok := httpStatusOf[code]; ok {
		return s
	}
	return http.StatusInternalServerError
}

// bodyOf returns the HTTP status and the body of a gRPC status error, and the RetryInfo delay.
func bodyOf(err error) (int, ErrorBody, time.Duration) {
	st := status.Convert(err)
	reason := connector.ReasonInternal
	if info := protoconv.ErrorInfoOf(err); info != nil {
		reason = connector.Reason(info.GetReason())
	}
	var retry time.Duration
	for _, d := range st.Details() {
		if ri, ok := d.(*errdetails.RetryInfo); ok {
			retry = ri.GetRetryDelay().AsDuration()
		}
	}
	b := ErrorBody{
		Code:      codeName(st.Code()),
		Reason:    string(reason),
		Message:   st.Message(),
		Retryable: retry > 0 || (st.Code() == codes.Unavailable && reason != connector.ReasonProviderOutcomeUnknown),
	}
	if retry > 0 {
		b.RetryAfterSeconds = int64(math.Ceil(retry.Seconds()))
	}
	return HTTPStatus(st.Code(), reason), b, retry
}

// codeName is a gRPC code's name as the proto spells it ("INVALID_ARGUMENT").
func codeName(c codes.Code) string {
	if n, ok := rpccode.Code_name[int32(c)]; ok {
		return n
	}
	return "UNKNOWN"
}

// writeError answers the gRPC status error err with its HTTP status and ErrorBody; a delay to
// wait goes in Retry-After too. httpStatus, when not 0, replaces the status of the table (for
// the transport's own refusals: 404, 405, 413, 415).
func writeError(w http.ResponseWriter, httpStatus int, err error) (int, ErrorBody) {
	code, b, retry := bodyOf(err)
	if httpStatus != 0 {
		code = httpStatus
	}
	if retry > 0 {
		w.Header().Set("Retry-After", strconv.FormatInt(b.RetryAfterSeconds, 10))
	}
	if code == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `Bearer realm="sms-connector"`)
	}
	writeJSON(w, code, b)
	return code, b
}

// writeJSON answers v as JSON with the status code.
func writeJSON(w http.ResponseWriter, code int, v any) {
	body, err := json.Marshal(v)
	if err != nil { // the bodies are plain structs and protojson output: cannot fail
		code, body = http.StatusInternalServerError, []byte(`{"code":"INTERNAL","reason":"INTERNAL","message":"internal error","retryable":false}`)
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	_, _ = w.Write(append(body, '\n'))
}
