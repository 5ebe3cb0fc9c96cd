package main

import (
	"io"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/sms-connector/sms-connector/connector/twilio/twiliotest"
)

// TestMain lets the test binary play the emulator process, as sms-load does when it starts
// itself again.
func TestMain(m *testing.M) {
	if len(os.Args) == 2 && os.Args[1] == serveEmulatorArg {
		serveEmulator(os.Stdin, os.Stdout)
		return
	}
	goleak.VerifyTestMain(m)
}

func TestParseFlags(t *testing.T) {
	opts, out, err := parseFlags(nil, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(opts.Concurrency, []int{1, 64}) || opts.Duration != 3*time.Second || opts.Warmup != 500*time.Millisecond ||
		opts.Rounds != 3 || opts.Binary != "bin/sms-connector" || opts.IdleWait != time.Second || out != "" {
		t.Errorf("defaults %+v, out %q", opts, out)
	}
	opts, out, err = parseFlags(strings.Fields("-concurrency 1,16,64 -duration 1s -warmup 0s -rounds 1 -out r.md"), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(opts.Concurrency, []int{1, 16, 64}) || opts.Duration != time.Second || opts.Warmup != 0 || opts.Rounds != 1 || out != "r.md" {
		t.Errorf("parsed %+v, out %q", opts, out)
	}
	for _, args := range []string{"-concurrency 0", "-concurrency 1,", "-concurrency x", "-duration 0s", "-warmup -1s", "-rounds 0", "extra"} {
		if _, _, err := parseFlags(strings.Fields(args), io.Discard); err == nil {
			t.Errorf("parseFlags(%q) succeeded, want an error", args)
		}
	}
}

// TestEmulatorProcess starts the emulator process, sends it one message as Twilio's API
// expects it, and stops it.
func TestEmulatorProcess(t *testing.T) {
	emuURL, stop, err := startEmulator(os.Stderr)
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	form := url.Values{"To": {"+14155550123"}, "From": {twiliotest.FromValid}, "Body": {"hello"}}
	req, err := http.NewRequest(http.MethodPost, emuURL+"/2010-04-01/Accounts/"+twiliotest.SandboxAccountSID+"/Messages.json", strings.NewReader(form.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(twiliotest.SandboxAccountSID, twiliotest.SandboxAuthToken)
	tr := &http.Transport{}
	defer tr.CloseIdleConnections()
	resp, err := (&http.Client{Transport: tr}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated || !strings.Contains(string(body), `"sid":"SM`) {
		t.Errorf("the emulator answered %d %s; want 201 with a message SID", resp.StatusCode, body)
	}
}
