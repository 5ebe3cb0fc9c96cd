package bench

import (
	"context"
	"errors"
	"fmt"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/protobuf/types/known/structpb"

	smsv1 "github.com/sms-connector/sms-connector/gen/connector/sms/v1"
)

// StartupOptions configure MeasureStartup.
type StartupOptions struct {
	// Binary is the sms-connector binary.
	Binary string
	// Standalone is how many times the binary is started as a standalone service
	// (--listen 127.0.0.1:0), Plugin how many times in plugin mode (PluginEnv required).
	Standalone, Plugin int
	// EmulatorURL is the Twilio emulator the first RPC's message goes to.
	EmulatorURL string
	// ConfigFile is the --config file of the standalone runs (the first RPC uses the default
	// configuration); empty: the first RPC carries the configuration.
	ConfigFile string
	// PluginEnv is the environment added in plugin mode (the magic cookie,
	// PLUGIN_PROTOCOL_VERSIONS=1, ...). Plugin runs get no flags: the emulator's URL is passed
	// as SMS_CONNECTOR_TWILIO_API_URL, and the first RPC carries its configuration.
	PluginEnv []string
}

// StartupResult holds one duration per run, each from just before exec.
type StartupResult struct {
	// Serving: until the "sms-connector serving" log line.
	Serving []time.Duration
	// FirstRPC: until the first SendMessage, sent as soon as the serving line was read, returned
	// successfully.
	FirstRPC []time.Duration
	// Handshake: until the plugin handshake line on stdout (plugin mode).
	Handshake []time.Duration
	// PluginFirstRPC: until the first SendMessage over the handshake's address returned
	// successfully (plugin mode).
	PluginFirstRPC []time.Duration
}

// MeasureStartup starts the binary opts.Standalone times as a standalone service and
// opts.Plugin times in plugin mode, one process at a time, and times each from exec to its
// readiness line and to its first successful SendMessage.
func MeasureStartup(ctx context.Context, opts StartupOptions) (*StartupResult, error) {
	res := &StartupResult{}
	args := []string{"--listen", "127.0.0.1:0", "--log-level", "info", "--twilio-api-url", opts.EmulatorURL}
	cfg := ConfigStruct(0)
	if opts.ConfigFile != "" {
		args = append(args, "--config", opts.ConfigFile)
		cfg = nil
	}
	for range opts.Standalone {
		ready, rpc, err := startOnce(ctx, BinaryOptions{Path: opts.Binary, Args: args, Ready: ReadyServingLine}, cfg)
		if err != nil {
			return nil, fmt.Errorf("standalone start-up: %w", err)
		}
		res.Serving = append(res.Serving, ready)
		res.FirstRPC = append(res.FirstRPC, rpc)
	}
	if opts.Plugin == 0 {
		return res, nil
	}
	if opts.PluginEnv == nil {
		return nil, errors.New("bench: plugin start-up needs StartupOptions.PluginEnv (the magic cookie)")
	}
	env := append([]string{"SMS_CONNECTOR_TWILIO_API_URL=" + opts.EmulatorURL, "SMS_CONNECTOR_LISTEN="}, opts.PluginEnv...)
	for range opts.Plugin {
		ready, rpc, err := startOnce(ctx, BinaryOptions{Path: opts.Binary, Env: env, Ready: ReadyHandshake}, ConfigStruct(0))
		if err != nil {
			return nil, fmt.Errorf("plugin start-up: %w", err)
		}
		res.Handshake = append(res.Handshake, ready)
		res.PluginFirstRPC = append(res.PluginFirstRPC, rpc)
	}
	return res, nil
}

// startOnce starts the binary, sends one SendMessage (with cfg, nil for the default) as soon as
// it is ready, stops it, and returns the times from exec to ready and to the RPC's success.
func startOnce(ctx context.Context, opts BinaryOptions, cfg *structpb.Struct) (ready, rpc time.Duration, err error) {
	b, err := StartBinary(ctx, opts)
	if err != nil {
		return 0, 0, err
	}
	defer func() {
		// A plugin is stopped by its host through GRPCController/Shutdown; how it takes a
		// SIGTERM is not measured here.
		if serr := b.Stop(5 * time.Second); serr != nil && err == nil && opts.Ready != ReadyHandshake {
			err = fmt.Errorf("bench: stopping the binary: %w\n%s", serr, b.Logs())
		}
	}()
	conn, err := DialGRPC(b.Addr)
	if err != nil {
		return 0, 0, err
	}
	defer conn.Close()
	rctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	resp, err := smsv1.NewSmsConnectorClient(conn).SendMessage(rctx, NewRequest(cfg), grpc.WaitForReady(true))
	if err != nil {
		return 0, 0, fmt.Errorf("bench: first SendMessage: %w\n%s", err, b.Logs())
	}
	rpc = time.Since(b.Started)
	if resp.GetMessageId() == "" {
		return 0, 0, fmt.Errorf("bench: first SendMessage: no message id")
	}
	return b.Ready, rpc, nil
}
