package twiliotest

import (
	"fmt"
	"net/http"
	"strconv"
	"time"
)

// FaultKind says how a faulted request fails. The zero value is not a valid kind.
type FaultKind int

const (
	// FaultTooManyRequests answers 429 with Twilio's error JSON, code 20429: Twilio refused the
	// request before processing it, so it is safe to retry.
	FaultTooManyRequests FaultKind = iota + 1
	// FaultServerErrorHTML answers 502 with an HTML page, as a load balancer in front of Twilio
	// does: twilio-go cannot decode it and returns a plain error.
	FaultServerErrorHTML
	// FaultServerErrorJSON answers 500 with Twilio's error JSON, code 20500: the outcome of the
	// request is unknown.
	FaultServerErrorJSON
	// FaultConnectionReset hijacks the connection and closes it with SO_LINGER 0, so the client
	// sees a TCP reset and no response.
	FaultConnectionReset
	// FaultRedirect answers 302 without a Location and with the body "{}": twilio-go accepts any
	// 3xx as success and returns a message whose fields are all nil.
	FaultRedirect
)

// String returns the name of the constant, for test and log output.
func (k FaultKind) String() string {
	switch k {
	case FaultTooManyRequests:
		return "FaultTooManyRequests"
	case FaultServerErrorHTML:
		return "FaultServerErrorHTML"
	case FaultServerErrorJSON:
		return "FaultServerErrorJSON"
	case FaultConnectionReset:
		return "FaultConnectionReset"
	case FaultRedirect:
		return "FaultRedirect"
	}
	return "FaultKind(" + strconv.Itoa(int(k)) + ")"
}

// Fault describes how the emulator fails a request instead of processing it; see
// Server.InjectFault.
type Fault struct {
	// Kind is the way the request fails.
	Kind FaultKind
	// Status, if not 0, replaces the kind's HTTP status (for example 503 for
	// FaultServerErrorHTML). FaultConnectionReset ignores it.
	Status int
	// RetryAfter, if positive, is sent as a Retry-After header in whole seconds, rounded up.
	RetryAfter time.Duration
}

// defaultStatus is the HTTP status of each kind when Fault.Status is 0.
func (k FaultKind) defaultStatus() int {
	switch k {
	case FaultTooManyRequests:
		return http.StatusTooManyRequests
	case FaultServerErrorHTML:
		return http.StatusBadGateway
	case FaultRedirect:
		return http.StatusFound
	}
	return http.StatusInternalServerError
}

// writeFault answers r with f.
func writeFault(w http.ResponseWriter, f Fault) {
	if f.Kind == FaultConnectionReset {
		reset(w)
		return
	}
	status := f.Status
	if status == 0 {
		status = f.Kind.defaultStatus()
	}
	if f.RetryAfter > 0 {
		secs := (f.RetryAfter + time.Second - 1) / time.Second
		w.Header().Set("Retry-After", strconv.FormatInt(int64(secs), 10))
	}
	switch f.Kind {
	case FaultTooManyRequests:
		writeError(w, status, 20429, "Too Many Requests")
	case FaultServerErrorJSON:
		writeError(w, status, 20500, "An internal server error has occurred")
	case FaultServerErrorHTML:
		text := fmt.Sprintf("%d %s", status, http.StatusText(status))
		w.Header().Set("Content-Type", "text/html")
		w.WriteHeader(status)
		_, _ = fmt.Fprintf(w, "<html>\r\n<head><title>%s</title></head>\r\n"+
			"<body>\r\n<center><h1>%s</h1></center>\r\n</body>\r\n</html>\r\n", text, text)
	case FaultRedirect:
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		_, _ = w.Write([]byte("{}"))
	}
}

// reset closes the request's connection so that the client receives a TCP RST and no response.
func reset(w http.ResponseWriter) {
	conn, _, err := http.NewResponseController(w).Hijack()
	if err != nil {
		// Not an HTTP/1 connection we can take over: abort, which closes or resets the stream.
		panic(http.ErrAbortHandler)
	}
	if tc, ok := conn.(interface{ SetLinger(sec int) error }); ok {
		_ = tc.SetLinger(0)
	}
	_ = conn.Close()
}
