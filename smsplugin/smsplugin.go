// Package smsplugin runs an SMS connector out of process with HashiCorp go-plugin's protocol,
// on both sides of the wire.
//
// A platform (the host) starts a connector binary as a child process; the binary (the plugin)
// answers with one handshake line on its standard output and serves the
// connector.sms.v1.SmsConnector gRPC service; the host calls it through a value that
// implements connector.SmsConnector, so it cannot tell a remote connector from a local one.
//
//   - Host side: Launch starts a binary, handshakes and returns a *Plugin; Plugin.Kill shuts it
//     down gracefully. Client is the connector.SmsConnector over any gRPC connection (a plugin
//     or a standalone sms-connector service).
//   - Plugin side: Serve speaks the protocol for a connector; package sdk calls it, so a
//     vendor's binary gets plugin mode without writing any of this.
//   - Both: Handshake (the magic cookie and protocol version, also in docs/plugin.md for hosts
//     in other languages), PluginName and GRPCPlugin, the go-plugin plugin.GRPCPlugin of the
//     contract for hosts that use go-plugin's client directly.
//
// # The handshake
//
// The host sets, in the child's environment, MagicCookieKey=MagicCookieValue and
// PLUGIN_PROTOCOL_VERSIONS (a comma-separated list that must contain ProtocolVersion), and
// optionally PLUGIN_CLIENT_CERT (AutoMTLS: the host's PEM certificate), PLUGIN_MIN_PORT and
// PLUGIN_MAX_PORT (the TCP port range), PLUGIN_UNIX_SOCKET_DIR and PLUGIN_UNIX_SOCKET_GROUP (where
// the unix socket goes and which group may use it). The plugin's first stdout bytes are
//
//	1|1|unix|/tmp/sms-connector-plugin-1a2b.sock|grpc
//	1|1|tcp|127.0.0.1:10000|grpc|MIIB...   (AutoMTLS: the plugin's certificate)
//
// fields: go-plugin's core protocol version (1), ProtocolVersion, network, address, "grpc" and,
// with AutoMTLS, the plugin's self-signed certificate as base64 of its DER bytes without
// padding. With AutoMTLS the plugin accepts only connections that present the host's
// certificate. It serves SmsConnector, grpc.health.v1 (service "plugin" SERVING, as go-plugin's
// host pings it), server reflection, plugin.GRPCController/Shutdown and plugin.GRPCStdio.
package smsplugin

import (
	"context"
	"encoding/json"

	"github.com/hashicorp/go-plugin"
	"go.uber.org/zap"
	"google.golang.org/grpc"

	"github.com/sms-connector/sms-connector/connector"
	"github.com/sms-connector/sms-connector/server"
)

// The handshake values. A host sets MagicCookieKey=MagicCookieValue in the plugin's
// environment; the value is not a secret (go-plugin calls it a UX feature): it lets a binary
// started by hand, or by a host of another kind of plugin, say so instead of misbehaving.
const (
	// ProtocolVersion is the version of this contract's plugin protocol: go-plugin's "app
	// protocol version", the second field of the handshake line. It changes only if the
	// SmsConnector service changes incompatibly.
	ProtocolVersion = 1
	// MagicCookieKey is the environment variable a host sets to launch a connector as a plugin.
	MagicCookieKey = "SMS_CONNECTOR_PLUGIN"
	// MagicCookieValue is the value MagicCookieKey must have.
	MagicCookieValue = "LcKKOnQsDcapWO4JN6CIqkdKiHuxjvyG"
)

// PluginName is the name the SmsConnector plugin is dispensed under in go-plugin's PluginSet.
const PluginName = "sms_connector"

// Environment variables of go-plugin's protocol that Serve reads, besides MagicCookieKey.
const (
	// EnvProtocolVersions lists the app protocol versions the host speaks, comma-separated.
	EnvProtocolVersions = "PLUGIN_PROTOCOL_VERSIONS"
	// EnvClientCert is the host's PEM certificate under AutoMTLS.
	EnvClientCert = "PLUGIN_CLIENT_CERT"
	// EnvMinPort is the lowest TCP port the plugin may listen on.
	EnvMinPort = "PLUGIN_MIN_PORT"
	// EnvMaxPort is the highest TCP port the plugin may listen on.
	EnvMaxPort = "PLUGIN_MAX_PORT"
	// EnvUnixSocketDir is the directory the unix socket is created in (default os.TempDir()).
	EnvUnixSocketDir = plugin.EnvUnixSocketDir
	// EnvUnixSocketGroup, when set, is the group (name or id) the unix socket is given to,
	// with mode 0660, so a host running as another user of that group can connect.
	EnvUnixSocketGroup = plugin.EnvUnixSocketGroup
)

// EnvNetwork chooses the plugin's transport: "unix" (the default, as go-plugin's plugins on
// every system but Windows) or "tcp" (loopback, inside PLUGIN_MIN_PORT..PLUGIN_MAX_PORT; the
// default on Windows). It is this contract's addition: go-plugin's own plugins decide by
// operating system alone, and its host accepts either answer. Launch's WithTCP sets it.
const EnvNetwork = "SMS_CONNECTOR_PLUGIN_NETWORK"

// Handshake returns the go-plugin handshake of the contract, for a host's
// plugin.ClientConfig (or a plugin.ServeConfig).
func Handshake() plugin.HandshakeConfig {
	return plugin.HandshakeConfig{
		ProtocolVersion:  ProtocolVersion,
		MagicCookieKey:   MagicCookieKey,
		MagicCookieValue: MagicCookieValue,
	}
}

// PluginSet returns the go-plugin PluginSet a host passes in plugin.ClientConfig.Plugins:
// PluginName dispensing a *Client.
func PluginSet() plugin.PluginSet {
	return plugin.PluginSet{PluginName: &GRPCPlugin{}}
}

// GRPCPlugin is the contract as a go-plugin plugin.GRPCPlugin: the same interface,
// connector.SmsConnector, on both sides of the wire. On the host side, GRPCClient returns a
// *Client; on the plugin side, GRPCServer registers the SmsConnector service for Impl on the
// grpc.Server that go-plugin's plugin.Serve built.
//
// A connector binary does not need it: package sdk serves plugin mode with Serve, which adds
// logging, panic recovery, graceful shutdown and a TCP transport that plugin.Serve lacks.
type GRPCPlugin struct {
	plugin.NetRPCUnsupportedPlugin

	// Impl is the connector GRPCServer serves; the host side leaves it nil.
	Impl connector.SmsConnector
	// DefaultConfig is the configuration used when a SendMessage request carries none.
	DefaultConfig json.RawMessage
	// Logger receives the causes of failed calls; nil means none.
	Logger *zap.Logger
}

// GRPCServer registers the SmsConnector service for p.Impl on s (see server.Register).
func (p *GRPCPlugin) GRPCServer(_ *plugin.GRPCBroker, s *grpc.Server) error {
	return server.Register(s, server.Options{Connector: p.Impl, DefaultConfig: p.DefaultConfig, Logger: p.Logger})
}

// GRPCClient returns the *Client of the connection go-plugin made to the plugin.
func (p *GRPCPlugin) GRPCClient(_ context.Context, _ *plugin.GRPCBroker, cc *grpc.ClientConn) (any, error) {
	return NewClient(cc), nil
}
