package connector

import (
	"context"
	"encoding/json"
	"errors"
	"testing"
)

// answering is a connector whose ValidateConfig and Metadata give fixed answers.
type answering struct {
	vs  []Violation
	md  *Metadata
	err error
}

func (a answering) Send(context.Context, *Message) (*Receipt, error) {
	return nil, errors.New("not used")
}
func (a answering) ValidateConfig(context.Context, json.RawMessage) ([]Violation, error) {
	return a.vs, a.err
}
func (a answering) Metadata(context.Context) (*Metadata, error) { return a.md, a.err }

func TestForward(t *testing.T) {
	boom := errors.New("boom")
	tests := []struct {
		name string
		next answering
	}{
		{"answers", answering{vs: []Violation{{Field: "from", Description: "is required"}}, md: &Metadata{ID: "x"}}},
		{"errors", answering{err: boom}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := Forward{Next: tt.next}
			vs, err := f.ValidateConfig(context.Background(), json.RawMessage(`{}`))
			if len(vs) != len(tt.next.vs) || (len(vs) > 0 && vs[0] != tt.next.vs[0]) || !errors.Is(err, tt.next.err) {
				t.Errorf("ValidateConfig = %v, %v; want %v, %v", vs, err, tt.next.vs, tt.next.err)
			}
			md, err := f.Metadata(context.Background())
			if md != tt.next.md || !errors.Is(err, tt.next.err) {
				t.Errorf("Metadata = %v, %v; want %v, %v", md, err, tt.next.md, tt.next.err)
			}
		})
	}
}
