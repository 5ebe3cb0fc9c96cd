package main

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	"github.com/sms-connector/sms-connector/connector/twilio/twiliotest"
)

// TestBinaryShutdownGraceCancelsWithStatus: SIGTERM while 20 sends wait on a Twilio that
// answers later than --shutdown-grace. When the grace ends, each send is cancelled and its
// caller gets UNAVAILABLE with ErrorInfo PROVIDER_OUTCOME_UNKNOWN (the SMS may exist), not the
// bare UNAVAILABLE of a closed connection, which looks safe to retry; the process exits 0.
func TestBinaryShutdownGraceCancelsWithStatus(t *testing.T) {
	const sends = 20
	emu := twiliotest.NewServer()
	defer emu.Close()
	emu.SetLatency(time.Minute)
	policy := writeFile(t, "policy.json", []byte(`{"recipient":[{"max":1000,"window":"1m"}],"prefix":[{"max":1000,"window":"1h"}]}`))
	p := startBinary(t, "--config", twilioConfigFile(t), "--twilio-api-url", emu.URL, "--twilio-timeout", "2m",
		"--policy", policy, "--shutdown-grace", "300ms", "--listen", "127.0.0.1:0")
	_, client := clientTo(t, p.Addr, insecure.NewCredentials())

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var wg sync.WaitGroup
	errs := make([]error, sends)
	for i := range sends {
		wg.Go(func() {
			_, errs[i] = client.SendMessage(ctx, sendReq(fmt.Sprintf("+1415555%04d", i)))
		})
	}
	for emu.Requests() < sends {
		select {
		case <-ctx.Done():
			t.Fatalf("only %d of %d sends reached the emulator", emu.Requests(), sends)
		case <-time.After(5 * time.Millisecond):
		}
	}
	p.Stop(t)
	wg.Wait()
	for i, err := range errs {
		if status.Code(err) != codes.Unavailable || reasonOf(err) != "PROVIDER_OUTCOME_UNKNOWN" {
			t.Errorf("send %d: %v; want UNAVAILABLE with reason PROVIDER_OUTCOME_UNKNOWN", i, err)
		}
	}
	if n := len(emu.Messages()); n != 0 {
		t.Errorf("the emulator accepted %d messages; every send was cut off before Twilio answered", n)
	}
	logs := p.Logs.String()
	for _, want := range []string{"shutting down: finishing in-flight RPCs", "shutdown deadline passed", `"error.reason":"PROVIDER_OUTCOME_UNKNOWN"`} {
		if !strings.Contains(logs, want) {
			t.Errorf("the log lacks %s:\n%s", want, logs)
		}
	}
	if strings.Contains(logs, "closing every connection") {
		t.Errorf("the cancelled sends did not answer in time; the connections were closed:\n%s", logs)
	}
}

// TestBinaryShutdownGraceFlag: --shutdown-grace must be positive.
func TestBinaryShutdownGraceFlag(t *testing.T) {
	for _, v := range []string{"0s", "-1s"} {
		out, code := runBinary(t, nil, "--sandbox", "--shutdown-grace", v)
		if code != 2 || !strings.Contains(out, "--shutdown-grace") {
			t.Errorf("--shutdown-grace %s: exit %d, output %q; want 2 and the flag named", v, code, out)
		}
	}
}
