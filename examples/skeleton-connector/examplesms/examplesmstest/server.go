// Package examplesmstest is a test double of the Example SMS API, shaped like
// net/http/httptest: NewServer starts it on loopback, URL says where, Messages returns what it
// accepted, Close stops it. The connector's tests run against it, and the binary's --sandbox
// serves it, so the connector can be tried without a vendor account.
//
// The API it stands for (made up for this example): POST /v1/messages with
// "Authorization: Bearer <key>" and a JSON body {"to", "from", "text"}; 201 with {"id",
// "status"} when accepted; otherwise an HTTP error status with {"error": {"code", "message"}}.
package examplesmstest

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
)

// SandboxAPIKey is the one API key the double accepts.
const SandboxAPIKey = "sandbox-key"

// Message is one message the double accepted.
type Message struct {
	// ID is the id the double answered with ("msg_" and 16 hex digits).
	ID string
	// To, From and Text are the fields of the request.
	To, From, Text string
}

// Server is a running double of the Example SMS API.
type Server struct {
	// URL is the base URL of the API, "http://127.0.0.1:port".
	URL string

	srv      *httptest.Server
	mu       sync.Mutex
	messages []Message
	stall    chan struct{} // non-nil while requests are held; closed to release them
}

// NewServer starts a double on a loopback port. The caller calls Close.
func NewServer() *Server {
	s := &Server{}
	s.srv = httptest.NewServer(http.HandlerFunc(s.serve))
	s.URL = s.srv.URL
	return s
}

// Close releases any held request and stops the server.
func (s *Server) Close() {
	s.Release()
	s.srv.Close()
}

// Messages returns the messages accepted so far, in order.
func (s *Server) Messages() []Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Message(nil), s.messages...)
}

// Stall holds every later request, unanswered, until Release; a held request is never
// accepted, even after Release (its caller has given up).
func (s *Server) Stall() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stall == nil {
		s.stall = make(chan struct{})
	}
}

// Release lets held requests go (they fail) and answers later ones at once again. It may be
// called more than once.
func (s *Server) Release() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stall != nil {
		close(s.stall)
		s.stall = nil
	}
}

// serve answers POST /v1/messages.
func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	stall := s.stall
	s.mu.Unlock()
	if stall != nil {
		select {
		case <-stall:
		case <-r.Context().Done():
		}
		fail(w, http.StatusServiceUnavailable, "stalled", "the request was held and dropped")
		return
	}
	if r.Method != http.MethodPost || r.URL.Path != "/v1/messages" {
		fail(w, http.StatusNotFound, "not_found", "no such endpoint")
		return
	}
	if r.Header.Get("Authorization") != "Bearer "+SandboxAPIKey {
		fail(w, http.StatusUnauthorized, "invalid_api_key", "the API key is not valid")
		return
	}
	var m Message
	var req struct{ To, From, Text string }
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 64<<10)).Decode(&req); err != nil {
		fail(w, http.StatusBadRequest, "invalid_request", "the body is not a JSON message")
		return
	}
	if !strings.HasPrefix(req.To, "+") || len(req.To) < 8 {
		fail(w, http.StatusBadRequest, "invalid_recipient", "to is not an E.164 number")
		return
	}
	m.To, m.From, m.Text = req.To, req.From, req.Text
	var b [8]byte
	_, _ = rand.Read(b[:])
	m.ID = "msg_" + hex.EncodeToString(b[:])
	s.mu.Lock()
	s.messages = append(s.messages, m)
	s.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusCreated)
	_ = json.NewEncoder(w).Encode(map[string]string{"id": m.ID, "status": "accepted"})
}

// fail writes the API's error document.
func fail(w http.ResponseWriter, status int, code, message string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]any{"error": map[string]string{"code": code, "message": message}})
}
