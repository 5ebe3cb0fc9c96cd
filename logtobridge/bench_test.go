package logtobridge_test

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"

	"github.com/sms-connector/sms-connector/connector/twilio"
	"github.com/sms-connector/sms-connector/connector/twilio/twiliotest"
	smsv1 "github.com/sms-connector/sms-connector/gen/connector/sms/v1"
	"github.com/sms-connector/sms-connector/logtobridge"
	"github.com/sms-connector/sms-connector/sdk"
	"github.com/sms-connector/sms-connector/server"
)

// BenchmarkSend compares one send over the bridge with one over gRPC, against the same
// in-process stack (Twilio emulator, twilio-go, the SDK's defences without the guard, the
// gRPC server), each over loopback with a bearer token. The budget: the bridge costs
// at most 20 % more CPU per send than gRPC.
func BenchmarkSend(b *testing.B) {
	emu := twiliotest.NewServer()
	defer emu.Close()
	vendor, err := twilio.New(twilio.Options{APIURL: emu.URL})
	if err != nil {
		b.Fatal(err)
	}
	defer vendor.Close()
	conn, err := sdk.Defend(vendor, sdk.Defences{IdempotencyWindow: time.Minute, MaxConcurrentSends: 256})
	if err != nil {
		b.Fatal(err)
	}
	srv, err := server.New(server.Options{Connector: conn, DefaultConfig: stackConfig(b), Logger: zap.NewNop(), Auth: server.Auth{Token: testToken}})
	if err != nil {
		b.Fatal(err)
	}
	gl, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	go func() { _ = srv.Serve(gl) }()
	br, err := logtobridge.New(logtobridge.Options{Sender: srv, Token: testToken, Logger: zap.NewNop()})
	if err != nil {
		b.Fatal(err)
	}
	hl, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	go func() { _ = br.Serve(hl) }()
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		br.Shutdown(ctx)
		srv.Shutdown(ctx)
	}()

	b.Run("grpc", func(b *testing.B) {
		cc, err := grpc.NewClient(gl.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
		if err != nil {
			b.Fatal(err)
		}
		defer cc.Close()
		client := smsv1.NewSmsConnectorClient(cc)
		ctx := context.Background()
		b.ReportAllocs()
		for b.Loop() {
			md := grpcAuth(ctx)
			_, err := client.SendMessage(md, &smsv1.SendMessageRequest{To: "+14155550123", UsageType: smsv1.UsageType_USAGE_TYPE_SIGN_IN,
				Payload: &smsv1.Payload{Code: "123456", Locale: "fr-CA"}, ClientIp: "203.0.113.9"})
			if err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("http", func(b *testing.B) {
		client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 4}}
		defer client.CloseIdleConnections()
		url := fmt.Sprintf("http://%s%s", hl.Addr(), logtobridge.PathLogtoSMS)
		const body = `{"to":"+14155550123","type":"SignIn","payload":{"code":"123456","locale":"fr-CA"},"ip":"203.0.113.9"}`
		b.ReportAllocs()
		for b.Loop() {
			req, _ := http.NewRequest(http.MethodPost, url, strings.NewReader(body))
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("Authorization", "Bearer "+testToken)
			resp, err := client.Do(req)
			if err != nil {
				b.Fatal(err)
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				b.Fatalf("status %d", resp.StatusCode)
			}
		}
	})
}

// grpcAuth returns ctx carrying the bearer token as gRPC metadata.
func grpcAuth(ctx context.Context) context.Context {
	return metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+testToken)
}
