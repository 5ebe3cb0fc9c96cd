package smsplugin

import (
	"context"
	"encoding/json"
	"errors"
	"testing"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/go-plugin"
	"github.com/hashicorp/go-plugin/runner"

	"github.com/sms-connector/sms-connector/connector"
)

// TestGRPCPluginUnderGoPluginServe runs GRPCPlugin on both sides with go-plugin alone: its
// plugin.Serve (in its in-process test mode) serves the fake connector through GRPCServer, and
// its client dispenses GRPCClient's *Client. The same interface on both sides of the wire.
func TestGRPCPluginUnderGoPluginServe(t *testing.T) {
	fake := newFake()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	reattach := make(chan *plugin.ReattachConfig, 1)
	closed := make(chan struct{})
	go plugin.Serve(&plugin.ServeConfig{
		HandshakeConfig: Handshake(),
		Plugins:         plugin.PluginSet{PluginName: &GRPCPlugin{Impl: fake, DefaultConfig: json.RawMessage(`{"x":1}`)}},
		GRPCServer:      plugin.DefaultGRPCServer,
		Logger:          hclog.NewNullLogger(),
		Test:            &plugin.ServeTestConfig{Context: ctx, ReattachConfigCh: reattach, CloseCh: closed},
	})
	var rc *plugin.ReattachConfig
	select {
	case rc = <-reattach:
	case <-closed:
		t.Fatal("plugin.Serve stopped before serving")
	}
	// Reattaching by pid would watch this very process until it exits; the in-process server
	// is attached instead, and is gone when plugin.Serve has returned.
	rc.Pid = 0
	rc.ReattachFunc = func() (runner.AttachedRunner, error) { return inProcess(closed), nil }
	client := plugin.NewClient(&plugin.ClientConfig{
		HandshakeConfig:  Handshake(),
		Plugins:          PluginSet(),
		Reattach:         rc,
		AllowedProtocols: []plugin.Protocol{plugin.ProtocolGRPC},
		Logger:           hclog.NewNullLogger(),
	})
	rpc, err := client.Client()
	if err != nil {
		t.Fatal(err)
	}
	raw, err := rpc.Dispense(PluginName)
	if err != nil {
		t.Fatal(err)
	}
	var c connector.SmsConnector = raw.(*Client)

	rec, err := c.Send(ctxFor(t), &connector.Message{To: "+15005550006", UsageType: connector.UsageGeneric, Payload: connector.Payload{Code: "42"}})
	if err != nil || rec.MessageID != "FAKE1" {
		t.Fatalf("Send = %+v, %v", rec, err)
	}
	if got := fake.messages(); len(got) != 1 || string(got[0].Config) != `{"x":1}` {
		t.Errorf("the connector got %+v (want the default config)", got)
	}
	_, err = c.Send(ctxFor(t), &connector.Message{To: toNoGeo, UsageType: connector.UsageGeneric, Payload: connector.Payload{Code: "42"}})
	var ce *connector.Error
	if !errors.As(err, &ce) || ce.Reason != connector.ReasonCountryNotPermitted || ce.ProviderCode != "21408" {
		t.Errorf("err = %v", err)
	}
	if err := rpc.Ping(); err != nil {
		t.Errorf("Ping: %v", err)
	}
	if err := rpc.Close(); err != nil { // GRPCController.Shutdown: go-plugin's server stops
		t.Errorf("Close: %v", err)
	}
	// plugin.Serve returns by itself. (Cancelling its context too would stop its server twice,
	// which races inside go-plugin v1.8.0: both stops write GRPCServer.broker.)
	<-closed
}

func TestGRPCPluginServerNeedsAConnector(t *testing.T) {
	if err := (&GRPCPlugin{}).GRPCServer(nil, plugin.DefaultGRPCServer(nil)); err == nil {
		t.Error("GRPCServer without Impl did not fail")
	}
}

// inProcess is go-plugin's view of a plugin served in this process: it has exited once done is
// closed, and cannot be killed.
type inProcess <-chan struct{}

func (p inProcess) Wait(ctx context.Context) error {
	select {
	case <-p:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
func (inProcess) Kill(context.Context) error { return errors.New("in-process plugin") }
func (inProcess) ID() string                 { return "in-process" }
func (inProcess) PluginToHost(n, a string) (string, string, error) {
	return n, a, nil
}
func (inProcess) HostToPlugin(n, a string) (string, string, error) {
	return n, a, nil
}
