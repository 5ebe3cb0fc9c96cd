package sdk

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"strings"

	"go.uber.org/zap"

	"github.com/sms-connector/sms-connector/server"
)

// security is the caller authentication of service mode, read from the flags at start-up.
type security struct {
	tls   *tls.Config // nil: plaintext
	mtls  bool        // client certificates are required
	token string      // the bearer token; "" for none. Never logged.
}

// authenticates reports whether callers must prove who they are.
func (s *security) authenticates() bool { return s.mtls || s.token != "" }

// loadSecurity reads the TLS files and the bearer token file o names. The token file is
// trimmed of surrounding white space (a trailing newline is usual); an empty one is refused,
// since it would let anyone in while the operator believes callers are checked. A token file
// other users can read is accepted with a warning.
func loadSecurity(o *options, log *zap.Logger) (*security, error) {
	s := &security{}
	if o.tlsCert != "" {
		cfg, err := server.LoadTLS(o.tlsCert, o.tlsKey, o.tlsClientCA)
		if err != nil {
			return nil, fmt.Errorf("--tls-cert/--tls-key/--tls-client-ca: %w", err)
		}
		s.tls, s.mtls = cfg, cfg.ClientCAs != nil
	}
	if o.authTokenFile != "" {
		fi, err := os.Stat(o.authTokenFile)
		if err != nil {
			return nil, fmt.Errorf("--auth-token-file: %w", err)
		}
		raw, err := os.ReadFile(o.authTokenFile)
		if err != nil {
			return nil, fmt.Errorf("--auth-token-file: %w", err)
		}
		s.token = strings.TrimSpace(string(raw))
		switch {
		case s.token == "":
			return nil, fmt.Errorf("--auth-token-file %s is empty: put the bearer token callers must send in it", o.authTokenFile)
		case strings.ContainsAny(s.token, "\r\n\t "):
			return nil, fmt.Errorf("--auth-token-file %s holds more than one word: the bearer token is one line without spaces", o.authTokenFile)
		}
		if fi.Mode().Perm()&0o077 != 0 {
			log.Warn("the bearer token file can be read by other users: chmod 600 it",
				zap.String("file", o.authTokenFile), zap.String("mode", fi.Mode().Perm().String()))
		}
	}
	return s, nil
}

// checkExposure refuses to serve on a network address other machines can reach when nothing
// authenticates callers: anyone who could connect could send SMS at the operator's expense.
// It decides from the --listen address alone, before anything is bound, so that a refusal is
// never hidden behind "address already in use". Loopback addresses and unix sockets (mode
// 0600) are local; a host name is local when every address it resolves to is loopback;
// --insecure overrides, for a deployment where something in front of the server (a mesh, a
// gateway) authenticates.
func checkExposure(ctx context.Context, listen string, sec *security, insecure bool, log *zap.Logger) error {
	if !reachable(ctx, listen) {
		return nil
	}
	if sec.token != "" && sec.tls == nil {
		log.Warn("the bearer token travels in clear text on a network address: add --tls-cert and --tls-key",
			zap.String("address", listen))
	}
	if sec.authenticates() {
		return nil
	}
	if insecure {
		log.Warn("serving without caller authentication on an address other machines can reach (--insecure): whoever can connect can send SMS",
			zap.String("address", listen))
		return nil
	}
	return fmt.Errorf("refusing to serve on %s without caller authentication: it is not a loopback address, so anyone who can reach it could send SMS at your expense. "+
		"Give --auth-token-file (a bearer token) and/or --tls-cert, --tls-key and --tls-client-ca (client certificates), "+
		"or listen on loopback (127.0.0.1) or a unix socket, or pass --insecure if something in front of the server already authenticates callers", listen)
}

// reachable reports whether listen, as --listen takes it, names a TCP address other machines
// may reach: every interface (":50051", "0.0.0.0:50051"), an address that is not loopback, or
// a host name with an address that is not (or that does not resolve: listening fails then
// anyway). A malformed address is left to the listener to report.
func reachable(ctx context.Context, listen string) bool {
	if strings.HasPrefix(listen, "unix:") {
		return false
	}
	host, _, err := net.SplitHostPort(listen)
	if err != nil {
		return false
	}
	if host == "" {
		return true
	}
	if ip, err := netip.ParseAddr(host); err == nil {
		return !ip.IsLoopback()
	}
	addrs, err := net.DefaultResolver.LookupNetIP(ctx, "ip", host)
	if err != nil || len(addrs) == 0 {
		return true
	}
	for _, a := range addrs {
		if !a.Unmap().IsLoopback() {
			return true
		}
	}
	return false
}

// checkSecurityFlags reports flag combinations that cannot work, as usage errors.
func checkSecurityFlags(o *options) error {
	if o.plugin {
		var set []string
		for _, f := range []struct {
			name string
			on   bool
		}{
			{"--tls-cert", o.tlsCert != ""}, {"--tls-key", o.tlsKey != ""}, {"--tls-client-ca", o.tlsClientCA != ""},
			{"--auth-token-file", o.authTokenFile != ""}, {"--auth-exempt-health", o.authExemptHealth}, {"--insecure", o.insecure},
		} {
			if f.on {
				set = append(set, f.name)
			}
		}
		if len(set) > 0 {
			return fmt.Errorf("%s apply to service mode only: in plugin mode the host and the plugin authenticate each other with go-plugin's AutoMTLS (PLUGIN_CLIENT_CERT), over a unix socket of mode 0600 or loopback",
				strings.Join(set, ", "))
		}
		return nil
	}
	switch {
	case (o.tlsCert == "") != (o.tlsKey == ""):
		return errors.New("--tls-cert and --tls-key go together: the server's certificate and its private key")
	case o.tlsClientCA != "" && o.tlsCert == "":
		return errors.New("--tls-client-ca needs --tls-cert and --tls-key: client certificates are checked over TLS")
	case o.authExemptHealth && o.tlsClientCA == "" && o.authTokenFile == "":
		return errors.New("--auth-exempt-health exempts health and reflection from caller authentication, and none is on: give --auth-token-file or --tls-client-ca, or drop it")
	}
	return nil
}
