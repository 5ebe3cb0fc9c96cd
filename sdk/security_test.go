package sdk_test

import (
	"bytes"
	"net"
	"strconv"
	"strings"
	"testing"

	"github.com/sms-connector/sms-connector/sdk"
)

// TestExposedAddressRefused: a non-loopback address without caller authentication is refused
// before anything is bound, so a port already in use does not hide the reason.
func TestExposedAddressRefused(t *testing.T) {
	busy, err := net.Listen("tcp", "0.0.0.0:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	busyPort := strconv.Itoa(busy.Addr().(*net.TCPAddr).Port)
	for _, listen := range []string{"0.0.0.0:0", "0.0.0.0:" + busyPort, ":" + busyPort} {
		t.Run(listen, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			code := sdk.Run(ctxFor(t), binary(&fake{}), []string{"--listen", listen}, env{}.get, &stdout, &stderr)
			out := stderr.String()
			if code != 1 || !strings.Contains(out, "refusing to serve on "+listen+" without caller authentication") ||
				strings.Contains(out, "address already in use") || strings.Contains(out, sdk.ServingMessage) {
				t.Errorf("exit %d:\n%s", code, out)
			}
		})
	}
}

// TestLoopbackNeedsNoAuth: loopback, by address or by a name that resolves only to loopback,
// serves without caller authentication.
func TestLoopbackNeedsNoAuth(t *testing.T) {
	for _, listen := range []string{"127.0.0.1:0", "localhost:0"} {
		t.Run(listen, func(t *testing.T) {
			r, cancel := start(t, binary(&fake{}), []string{"--listen", listen}, env{})
			r.waitFor(t, "msg", sdk.ServingMessage)
			cancel()
			if code := <-r.code; code != 0 {
				t.Errorf("exit %d:\n%s", code, r.logs())
			}
			r.code <- 0
		})
	}
}
