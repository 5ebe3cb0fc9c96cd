package twiliotest

import (
	"fmt"
	"net"
	"net/http"
	"slices"
	"sync"
	"time"
)

// The sandbox account is the default account of every emulator. Both values are well-formed
// (twilio-go accepts them and config validation passes) and obviously fake, so they can be
// published in the README for the binary's --sandbox mode.
const (
	// SandboxAccountSID is the account SID an emulator accepts unless WithAccount says otherwise.
	SandboxAccountSID = "AC00000000000000000000000000000000"
	// SandboxAuthToken is the auth token of SandboxAccountSID.
	SandboxAuthToken = "0123456789abcdef0123456789abcdef"
)

// Magic numbers, after Twilio's test credentials; see the package documentation for the table.
// Tests use them to provoke a given Twilio error without configuring anything.
const (
	// FromValid is a sender every account owns: messages from it are accepted.
	FromValid = "+15005550006"
	// FromInvalid as From gives 21212 (invalid From number).
	FromInvalid = "+15005550001"
	// FromNotOwned as From gives 21606 (From is not a number of the account).
	FromNotOwned = "+15005550007"
	// FromQueueFull as From gives 21611 (the sender's queue is full).
	FromQueueFull = "+15005550008"

	// ToInvalid as To gives 21211 (invalid To number).
	ToInvalid = "+15005550001"
	// ToUnreachable as To gives 21612 (To cannot be reached from this sender).
	ToUnreachable = "+15005550002"
	// ToNoGeoPermission as To gives 21408 (the account may not send to To's country).
	ToNoGeoPermission = "+15005550003"
	// ToOptedOut as To gives 21610 (the recipient replied STOP).
	ToOptedOut = "+15005550004"
	// ToNotMobile as To gives 21614 (To is not a mobile number).
	ToNotMobile = "+15005550009"
	// ToLandline as To gives 21635 (To is a landline). Twilio has no such magic number; this
	// emulator adds it so the landline path can be tested too.
	ToLandline = "+15005550010"
)

// Message is what the emulator recorded of one accepted message: what Twilio would have sent.
type Message struct {
	// Sid is the message SID the emulator returned: "SM" + 32 lowercase hex.
	Sid string
	// AccountSid is the account that sent the message.
	AccountSid string
	// To is the recipient, as given.
	To string
	// From is the sender as given; empty when only a Messaging Service was given.
	From string
	// MessagingServiceSid is the Messaging Service given, or empty.
	MessagingServiceSid string
	// Body is the text of the message.
	Body string
	// Status is the message's current status: "queued" (or "accepted" with a Messaging
	// Service) when created, then, when it has a StatusCallback, each later status as its
	// callback is posted ("sent", "delivered", "undelivered", "failed"; never going back, even
	// with WithCallbackChaos). A GET of the message answers with its current value.
	Status string
	// ErrorCode is the Twilio error code of an "undelivered" or "failed" Status, 0 otherwise.
	ErrorCode int
	// StatusCallback is the StatusCallback URL given, or empty. When given, the emulator posts
	// the message's status callbacks to it (see the package documentation).
	StatusCallback string
	// RiskCheck is the RiskCheck parameter given ("enable", "disable"), or empty.
	RiskCheck string
	// ValidityPeriod is the ValidityPeriod given in seconds, or 0 when absent.
	ValidityPeriod int
	// NumMedia is how many MediaUrl parameters were given.
	NumMedia int
	// NumSegments is the number of SMS segments Body needs (GSM-7 or UCS-2), even when the
	// response said "0" because a Messaging Service was used.
	NumSegments int
	// DateCreated is when the emulator accepted the message, in UTC to the second.
	DateCreated time.Time
}

// Option configures a Server at construction.
type Option func(*config)

// config is what the options set. It is never changed after construction, so handlers read it
// without locking.
type config struct {
	accountSID string
	authToken  string
	apiKeys    map[string]string   // key SID -> secret
	senders    map[string]struct{} // From values the account owns besides the magic ones
	services   map[string]struct{} // nil: every well-formed MG SID is valid
	onMessage  func(Message)

	callbackDelay time.Duration // before each status callback
	callbackChaos bool          // callbacks out of order and repeated
}

// WithAccount sets the account the emulator authenticates and serves, replacing the sandbox
// account (SandboxAccountSID, SandboxAuthToken).
func WithAccount(accountSID, authToken string) Option {
	return func(c *config) {
		c.accountSID = accountSID
		c.authToken = authToken
	}
}

// WithAPIKey adds a Twilio API key ("SK" + 32 hex) and its secret as another credential pair
// accepted for the account, so API-key authentication can be tested. It may be given repeatedly.
func WithAPIKey(keySID, secret string) Option {
	return func(c *config) {
		c.apiKeys[keySID] = secret
	}
}

// WithSenders adds From values the account owns, besides FromValid and alphanumeric sender IDs.
// A From that is a well-formed number not owned by the account is rejected with 21606.
func WithSenders(numbers ...string) Option {
	return func(c *config) {
		for _, n := range numbers {
			c.senders[n] = struct{}{}
		}
	}
}

// WithMessagingServices restricts the valid Messaging Service SIDs to sids; any other
// MessagingServiceSid is rejected with 21705. Without it (or with no SIDs) every well-formed
// "MG" + 32 hex SID is valid.
func WithMessagingServices(sids ...string) Option {
	return func(c *config) {
		if len(sids) == 0 {
			return
		}
		if c.services == nil {
			c.services = make(map[string]struct{}, len(sids))
		}
		for _, sid := range sids {
			c.services[sid] = struct{}{}
		}
	}
}

// WithOnMessage sets fn to be called with each accepted message, for example to log it in
// sandbox mode. fn runs on the request's goroutine before the response is written and without
// the emulator's lock held, so it may call the Server's methods; a slow fn delays only that
// response. Calls for concurrent requests may run concurrently.
func WithOnMessage(fn func(Message)) Option {
	return func(c *config) {
		c.onMessage = fn
	}
}

// queuedFault is a fault and how many more requests it answers; remaining < 0 means forever.
type queuedFault struct {
	fault     Fault
	remaining int
}

// Server is a Twilio Programmable Messaging API emulator listening on a loopback port, like
// httptest.Server. Its methods are safe for concurrent use.
type Server struct {
	// URL is the base URL of the emulator, "http://127.0.0.1:PORT" with no trailing slash.
	// Start and Serve set it before they return.
	URL string

	cfg     config
	handler http.Handler
	done    chan struct{} // closed by Close; aborts latency waits

	mu       sync.Mutex // guards the fields below
	messages []Message
	requests int
	faults   []queuedFault
	latency  time.Duration
	posted   []Callback // status callbacks posted

	callbacks      sync.WaitGroup // status callback goroutines
	callbackClient *http.Client

	life      sync.Mutex // guards srv, started, closed
	srv       *http.Server
	started   bool
	closed    bool
	serveDone chan struct{}  // closed when srv.Serve has returned
	conns     sync.WaitGroup // connections not yet closed or hijacked
	inflight  sync.WaitGroup // handler calls still running
}

// NewServer starts and returns an emulator listening on 127.0.0.1 on a free port, like
// httptest.NewServer. The caller must Close it.
func NewServer(opts ...Option) *Server {
	s := NewUnstartedServer(opts...)
	s.Start()
	return s
}

// NewUnstartedServer returns an emulator that does not listen yet, so the caller can choose:
// Start listens on a free loopback port; Serve uses the caller's listener (as --sandbox does).
// Handler works at once. The caller must Close it.
func NewUnstartedServer(opts ...Option) *Server {
	cfg := config{
		accountSID: SandboxAccountSID,
		authToken:  SandboxAuthToken,
		apiKeys:    make(map[string]string),
		senders:    make(map[string]struct{}),

		callbackDelay: DefaultCallbackDelay,
	}
	for _, opt := range opts {
		opt(&cfg)
	}
	s := &Server{cfg: cfg, done: make(chan struct{}), callbackClient: &http.Client{Timeout: callbackTimeout}}
	mux := http.NewServeMux()
	mux.HandleFunc(messagesPattern, s.serveMessages)
	mux.HandleFunc(messagePattern, s.serveMessage)
	mux.HandleFunc("/", s.serveNotFound)
	s.handler = mux
	return s
}

// Start starts the emulator on a free port of 127.0.0.1 (or [::1] when IPv4 is unavailable)
// and sets URL. It panics if the server was already started or closed, or no port is free.
func (s *Server) Start() {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		if l, err = net.Listen("tcp6", "[::1]:0"); err != nil {
			panic(fmt.Sprintf("twiliotest: failed to listen on a loopback port: %v", err))
		}
	}
	s.Serve(l)
}

// Serve starts the emulator on l, a TCP listener it takes over and closes on Close, sets URL
// from l's address, and returns at once: unlike http.Server.Serve it does not block, so that
// Start and Serve behave alike. It panics if the server was already started or closed.
func (s *Server) Serve(l net.Listener) {
	s.life.Lock()
	defer s.life.Unlock()
	if s.started || s.closed {
		_ = l.Close()
		panic("twiliotest: Serve on a server already started or closed")
	}
	s.started = true
	s.URL = "http://" + l.Addr().String()
	s.srv = &http.Server{
		Handler:           http.HandlerFunc(s.serveTracked),
		ConnState:         s.trackConn,
		ReadHeaderTimeout: 10 * time.Second,
	}
	s.serveDone = make(chan struct{})
	go func(srv *http.Server, done chan<- struct{}) {
		defer close(done)
		_ = srv.Serve(l) // returns http.ErrServerClosed once Close is called
	}(s.srv, s.serveDone)
}

// Close stops the emulator: it stops listening, aborts requests waiting out a latency and
// status callbacks not yet posted, closes every client connection, and returns once every
// handler and callback has returned, so no goroutine of the emulator outlives it. Calling it
// again does nothing.
func (s *Server) Close() {
	s.life.Lock()
	if s.closed {
		s.life.Unlock()
		return
	}
	s.closed = true
	close(s.done)
	srv, serveDone := s.srv, s.serveDone
	s.life.Unlock()
	defer s.callbacks.Wait()
	defer s.callbackClient.CloseIdleConnections()
	if srv == nil {
		return
	}
	_ = srv.Close()
	<-serveDone
	s.conns.Wait()
	s.inflight.Wait()
}

// serveTracked is the handler of the emulator's own http.Server: it lets Close wait for
// handlers that outlive their connection's tracking (a hijacked connection).
func (s *Server) serveTracked(w http.ResponseWriter, r *http.Request) {
	s.inflight.Add(1)
	defer s.inflight.Done()
	s.handler.ServeHTTP(w, r)
}

// trackConn counts open connections for Close and closes any that is accepted while closing.
func (s *Server) trackConn(c net.Conn, state http.ConnState) {
	switch state {
	case http.StateNew:
		s.conns.Add(1)
		s.life.Lock()
		closed := s.closed
		s.life.Unlock()
		if closed {
			_ = c.Close()
		}
	case http.StateHijacked, http.StateClosed:
		s.conns.Done()
	}
}

// Handler returns the emulated API as a plain http.Handler, to mount in another server or call
// directly. FaultConnectionReset needs an HTTP/1 server that supports hijacking; without one it
// aborts the handler with http.ErrAbortHandler.
func (s *Server) Handler() http.Handler {
	return s.handler
}

// Messages returns copies of every accepted message, in the order they were accepted.
func (s *Server) Messages() []Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.messages)
}

// Requests reports how many requests reached the Messages routes (create and GET), including
// those that were faulted, rejected, or abandoned by the client.
func (s *Server) Requests() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.requests
}

// Reset returns the emulator's state to that of a new server: no messages, no requests, no
// queued faults, no latency. The options given at construction stay.
func (s *Server) Reset() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.messages = nil
	s.posted = nil
	s.requests = 0
	s.faults = nil
	s.latency = 0
}

// SetLatency makes every later response wait d before it is written (0 or less: no wait). A
// request whose client goes away, or that is in flight when the server closes, is abandoned.
func (s *Server) SetLatency(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.latency = max(d, 0)
}

// InjectFault queues f for the next times requests to the Messages routes; with times < 0
// f answers every request until ClearFaults or Reset, and faults queued after it never fire.
// Faults queue first in, first out. It panics if f.Kind is not one of the FaultKind constants.
func (s *Server) InjectFault(f Fault, times int) {
	if f.Kind < FaultTooManyRequests || f.Kind > FaultRedirect {
		panic(fmt.Sprintf("twiliotest: InjectFault with unknown %v", f.Kind))
	}
	if times == 0 {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults = append(s.faults, queuedFault{fault: f, remaining: times})
}

// ClearFaults drops every queued fault.
func (s *Server) ClearFaults() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults = nil
}

// arrive counts a request to the route and takes the fault, if any, that answers it, and the
// latency it waits.
func (s *Server) arrive() (f Fault, faulted bool, latency time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.requests++
	if len(s.faults) > 0 {
		q := &s.faults[0]
		f, faulted = q.fault, true
		if q.remaining > 0 {
			q.remaining--
			if q.remaining == 0 {
				s.faults = s.faults[1:]
			}
		}
	}
	return f, faulted, s.latency
}

// currentLatency returns the latency set with SetLatency.
func (s *Server) currentLatency() time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.latency
}

// message returns the current record of the message sid of account, if the emulator
// accepted it.
func (s *Server) message(account, sid string) (Message, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, m := range s.messages {
		if m.Sid == sid && m.AccountSid == account {
			return m, true
		}
	}
	return Message{}, false
}

// record stores an accepted message and then, outside the lock, calls the OnMessage hook and
// starts its status callbacks.
func (s *Server) record(m Message) {
	s.mu.Lock()
	s.messages = append(s.messages, m)
	s.mu.Unlock()
	if s.cfg.onMessage != nil {
		s.cfg.onMessage(m)
	}
	s.startCallbacks(m)
}

// wait sleeps d and reports whether the response should still be written: false when the client
// went away or the server is closing first.
func (s *Server) wait(r *http.Request, d time.Duration) bool {
	if d <= 0 {
		return true
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-r.Context().Done():
		return false
	case <-s.done:
		return false
	}
}
