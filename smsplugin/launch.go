package smsplugin

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"strings"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/go-plugin"
)

// Plugin is a connector binary running as a plugin of this process. It is a
// connector.SmsConnector (through its embedded *Client): every call goes to the child process.
// Kill it when done; it is not killed when the host exits unless the host calls Kill.
type Plugin struct {
	*Client

	client *plugin.Client
	cmd    *exec.Cmd
	cancel context.CancelFunc // kills the process through exec.CommandContext; for a failed start
}

// LaunchOption configures Launch.
type LaunchOption func(*launchOptions)

// launchOptions are what the options set.
type launchOptions struct {
	args     []string
	env      []string
	autoMTLS bool
	tcp      bool
	minPort  uint
	maxPort  uint
	stderr   io.Writer
	logger   hclog.Logger
}

// WithoutAutoMTLS turns go-plugin's AutoMTLS off: the connection is plaintext (over a unix
// socket only this user can open, unless the plugin is asked for TCP). AutoMTLS is on by
// default: host and plugin each make a one-time certificate and accept only each other.
func WithoutAutoMTLS() LaunchOption { return func(o *launchOptions) { o.autoMTLS = false } }

// WithTCP asks the plugin to listen on loopback TCP instead of a unix socket (it sets
// EnvNetwork=tcp), inside the port range (see WithPortRange).
func WithTCP() LaunchOption { return func(o *launchOptions) { o.tcp = true } }

// WithPortRange sets the TCP ports the plugin may listen on (PLUGIN_MIN_PORT and
// PLUGIN_MAX_PORT, inclusive; go-plugin's default is 10000..25000).
func WithPortRange(lo, hi uint) LaunchOption {
	return func(o *launchOptions) { o.minPort, o.maxPort = lo, hi }
}

// WithEnv adds "KEY=value" entries to the plugin's environment, after the host's own (which it
// inherits), so they win: for example "SMS_CONNECTOR_CONFIG=/etc/sms/twilio.json",
// "SMS_CONNECTOR_SANDBOX=true", "SMS_CONNECTOR_LOG_LEVEL=debug". The handshake variables are
// always go-plugin's.
func WithEnv(kv ...string) LaunchOption {
	return func(o *launchOptions) { o.env = append(o.env, kv...) }
}

// WithArgs sets the plugin's command-line arguments (flags such as "--connector", "console").
func WithArgs(args ...string) LaunchOption {
	return func(o *launchOptions) { o.args = append([]string(nil), args...) }
}

// WithStderr sends the plugin's standard error, its JSON log lines, to w; the default is the
// host's os.Stderr. (go-plugin also hands each line to its logger, see WithLogger.)
func WithStderr(w io.Writer) LaunchOption { return func(o *launchOptions) { o.stderr = w } }

// WithLogger sets go-plugin's client logger, which logs the client's own events and re-logs
// each of the plugin's log lines at its level. The default logs nothing.
func WithLogger(l hclog.Logger) LaunchOption { return func(o *launchOptions) { o.logger = l } }

// defaultStartTimeout bounds the start when ctx has no deadline: go-plugin's default.
const defaultStartTimeout = time.Minute

// Launch starts the connector binary at path as a plugin with go-plugin's client, waits for
// its handshake (AutoMTLS on unless WithoutAutoMTLS), checks its health service "plugin", and
// returns it, ready for calls. ctx
// bounds the start only: if it ends first, the process is killed and Launch fails; once
// Launch has returned, the plugin runs until Kill. Without a deadline in ctx, the start may
// take up to a minute.
//
// The plugin inherits the host's environment (without go-plugin's PLUGIN_* variables, which
// belong to the host's own launch if it has one) plus WithEnv's entries; the binary reads its
// SMS_CONNECTOR_* settings (default config, sandbox, log level, vendor flags) from there as it
// does when serving on its own.
func Launch(ctx context.Context, path string, opts ...LaunchOption) (*Plugin, error) {
	o := launchOptions{autoMTLS: true, stderr: os.Stderr, logger: hclog.NewNullLogger()}
	for _, opt := range opts {
		opt(&o)
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("launch %s: %w", path, err)
	}
	startTimeout := defaultStartTimeout
	if d, ok := ctx.Deadline(); ok {
		// ctx's end kills the process (below), which ends the start at once; go-plugin's own
		// timer is a backstop a little later, so that the error says it was ctx.
		startTimeout = time.Until(d) + time.Second
	}

	procCtx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(procCtx, path, o.args...)
	cmd.Env = append(inheritedEnv(), o.env...)
	if o.tcp {
		cmd.Env = append(cmd.Env, EnvNetwork+"=tcp")
	}
	client := plugin.NewClient(&plugin.ClientConfig{
		HandshakeConfig:  Handshake(),
		Plugins:          PluginSet(),
		Cmd:              cmd,
		AllowedProtocols: []plugin.Protocol{plugin.ProtocolGRPC},
		AutoMTLS:         o.autoMTLS,
		SkipHostEnv:      true, // cmd.Env has it already, before WithEnv's entries so that those win
		MinPort:          o.minPort,
		MaxPort:          o.maxPort,
		StartTimeout:     startTimeout,
		Stderr:           o.stderr,
		Logger:           o.logger,
	})
	p := &Plugin{client: client, cmd: cmd, cancel: cancel}

	stopWatching := context.AfterFunc(ctx, cancel) // ctx ending during the start kills the process
	conn, err := dispense(client)
	if !stopWatching() && err == nil {
		err = ctx.Err()
	}
	if err != nil {
		p.Kill()
		if ctxErr := ctx.Err(); ctxErr != nil && !errors.Is(err, ctxErr) {
			err = fmt.Errorf("%w (%w)", err, ctxErr)
		}
		return nil, fmt.Errorf("launch %s: %w", path, err)
	}
	p.Client = conn
	return p, nil
}

// inheritedEnv is the host's environment without the variables of a go-plugin launch, which
// belong to the host's own start if it is itself a plugin (its PLUGIN_CLIENT_CERT would make
// the child speak TLS to a host that did not ask for it); go-plugin sets the child's own.
func inheritedEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "PLUGIN_") && !strings.HasPrefix(kv, MagicCookieKey+"=") {
			env = append(env, kv)
		}
	}
	return env
}

// dispense starts the plugin, handshakes, checks the plugin's health and returns its
// connector client.
func dispense(client *plugin.Client) (*Client, error) {
	rpc, err := client.Client()
	if err != nil {
		return nil, err
	}
	if err := rpc.Ping(); err != nil { // health "plugin": the connection, and AutoMTLS, work
		return nil, fmt.Errorf("ping: %w", err)
	}
	raw, err := rpc.Dispense(PluginName)
	if err != nil {
		return nil, err
	}
	c, ok := raw.(*Client)
	if !ok {
		return nil, fmt.Errorf("plugin %s dispensed a %T", PluginName, raw)
	}
	return c, nil
}

// Kill shuts the plugin down the way go-plugin does: it calls GRPCController.Shutdown (the
// plugin stops accepting calls and lets those in flight finish), waits up to 2 s for the
// process to exit, then kills it. It returns once the process is gone and reaped. Calls made
// after Kill fail. Calling Kill again does nothing.
func (p *Plugin) Kill() {
	p.client.Kill()
	p.cancel()
}

// Pid is the plugin's process id.
func (p *Plugin) Pid() int {
	if rc := p.client.ReattachConfig(); rc != nil {
		return rc.Pid
	}
	return 0
}

// Addr is the address the plugin listens on, as its handshake line gave it: a unix socket
// path, or a loopback TCP address.
func (p *Plugin) Addr() net.Addr {
	if rc := p.client.ReattachConfig(); rc != nil {
		return rc.Addr
	}
	return nil
}

// Exited reports whether the plugin process has exited.
func (p *Plugin) Exited() bool { return p.client.Exited() }

// ExitCode is the plugin's exit code once it has exited: 0 after a graceful shutdown, -1 when
// it was killed by a signal (Kill's last resort) or is still running.
func (p *Plugin) ExitCode() int {
	if !p.client.Exited() || p.cmd.ProcessState == nil {
		return -1
	}
	return p.cmd.ProcessState.ExitCode()
}
