package server_test

import (
	"context"
	"testing"
	"time"

	"go.uber.org/zap/zaptest/observer"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// finishedSends waits until logs hold n "finished call" lines of SendMessage and returns them.
func finishedSends(t *testing.T, logs *observer.ObservedLogs, n int) []observer.LoggedEntry {
	t.Helper()
	guard := time.After(30 * time.Second) // against a hang, not a timing check
	for {
		var sends []observer.LoggedEntry
		for _, e := range logs.FilterMessage("finished call").AllUntimed() {
			if e.ContextMap()["grpc.method"] == "SendMessage" {
				sends = append(sends, e)
			}
		}
		if len(sends) >= n {
			return sends
		}
		select {
		case <-guard:
			t.Fatalf("%d finished SendMessage lines, want %d", len(sends), n)
		case <-time.After(5 * time.Millisecond):
		}
	}
}

// TestLogRecordsWhatTheCallerSaw: a caller whose deadline passes while Twilio's request is in
// flight sees DEADLINE_EXCEEDED, and the server logs DEADLINE_EXCEEDED (reason
// PROVIDER_TIMEOUT) every time, though the client's stream reset and the server's own timer
// race; a caller that cancels long before its deadline is logged CANCELLED.
func TestLogRecordsWhatTheCallerSaw(t *testing.T) {
	s := newStack(t)
	s.emu.SetLatency(time.Minute) // Twilio never answers in time; the emulator ends with the request
	const runs = 20
	for i := range runs {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Millisecond)
		_, err := s.client.SendMessage(ctx, request(t, "+14155550123"))
		cancel()
		if status.Code(err) != codes.DeadlineExceeded {
			t.Fatalf("run %d: %v, want DEADLINE_EXCEEDED", i, err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Hour)
	before := s.emu.Requests()
	go func() {
		for s.emu.Requests() == before {
			time.Sleep(time.Millisecond)
		}
		cancel()
	}()
	_, err := s.client.SendMessage(ctx, request(t, "+14155550123"))
	if status.Code(err) != codes.Canceled {
		t.Fatalf("cancelled send: %v, want CANCELLED", err)
	}

	seen := map[[2]any]int{}
	for _, e := range finishedSends(t, s.logs, runs+1) {
		f := e.ContextMap()
		seen[[2]any{f["grpc.code"], f["error.reason"]}]++
	}
	want := map[[2]any]int{{"DeadlineExceeded", "PROVIDER_TIMEOUT"}: runs, {"Canceled", "CANCELLED"}: 1}
	if len(seen) != len(want) || seen[[2]any{"DeadlineExceeded", "PROVIDER_TIMEOUT"}] != runs || seen[[2]any{"Canceled", "CANCELLED"}] != 1 {
		t.Errorf("logged (grpc.code, error.reason) counts %v, want %v: what each caller saw", seen, want)
	}
}
