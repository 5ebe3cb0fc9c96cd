package main

import (
	"context"
	"net"
	"testing"

	"go.uber.org/goleak"
	"google.golang.org/grpc"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	smsv1 "github.com/sms-connector/sms-connector/gen/connector/sms/v1"
	"github.com/sms-connector/sms-connector/internal/testutil/testbin"
)

// TestMain removes the binaries the end-to-end tests built and fails the package's tests if a
// goroutine (a server, a client, a process waiter) outlives them.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, goleak.Cleanup(testbin.RemoveAndExit))
}

// brokenServer breaks the contract in plain sight: its metadata has no "en" name, it accepts
// any SendMessage (an empty 'to' included) and it does not implement ValidateConfig, whose
// UNIMPLEMENTED error carries no google.rpc.ErrorInfo.
type brokenServer struct {
	smsv1.UnimplementedSmsConnectorServer
}

func (brokenServer) GetMetadata(context.Context, *smsv1.GetMetadataRequest) (*smsv1.GetMetadataResponse, error) {
	return &smsv1.GetMetadataResponse{
		Id:              "broken-sms",
		Name:            map[string]string{"fr": "Cassé"},
		Description:     map[string]string{"en": "A connector broken on purpose."},
		ContractVersion: "connector.sms.v1",
	}, nil
}

func (brokenServer) SendMessage(_ context.Context, req *smsv1.SendMessageRequest) (*smsv1.SendMessageResponse, error) {
	return &smsv1.SendMessageResponse{MessageId: "broken-1", Segments: 1, Encoding: smsv1.Encoding_ENCODING_GSM7, To: req.GetTo()}, nil
}

// serveBroken serves brokenServer, with health SERVING, on loopback and returns its address.
func serveBroken(t *testing.T) string {
	t.Helper()
	gs := grpc.NewServer()
	smsv1.RegisterSmsConnectorServer(gs, brokenServer{})
	healthpb.RegisterHealthServer(gs, health.NewServer())
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = gs.Serve(l)
	}()
	t.Cleanup(func() {
		gs.Stop()
		<-done
	})
	return l.Addr().String()
}

// brokenFailures are lines the report on brokenServer must hold.
var brokenFailures = []string{
	`FAIL Metadata/Name: conformance: Metadata.Name (name) must have a non-empty "en" entry (the language platforms fall back to), got the languages ["fr"]`,
	`FAIL SendMessage/EmptyTo: conformance: SendMessage with an empty 'to' must fail with INVALID_ARGUMENT and reason INVALID_PHONE_NUMBER or INVALID_REQUEST, got success (message_id "broken-1" to "")`,
	`FAIL ValidateConfig/MissingConfig: conformance: ValidateConfig without a config must fail with INVALID_ARGUMENT and reason INVALID_REQUEST, got UNIMPLEMENTED without a google.rpc.ErrorInfo`,
	`FAIL Errors/ErrorInfo: conformance: every error of an SmsConnector RPC must carry a google.rpc.ErrorInfo`,
}
