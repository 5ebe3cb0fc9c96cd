package main

import (
	"runtime/debug"
	"runtime/metrics"
	"testing"
)

// gogc reads the garbage collector's current target from the runtime.
func gogc(t *testing.T) uint64 {
	t.Helper()
	s := []metrics.Sample{{Name: "/gc/gogc:percent"}}
	metrics.Read(s)
	if s[0].Value.Kind() != metrics.KindUint64 {
		t.Fatal("runtime/metrics has no /gc/gogc:percent")
	}
	return s[0].Value.Uint64()
}

func TestSetGCPercent(t *testing.T) {
	tests := []struct {
		name string
		gogc string // the GOGC variable
		want uint64
	}{
		{"GOGC unset: the binary's default", "", defaultGOGC},
		{"GOGC set: left to the runtime", "120", 77},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			defer debug.SetGCPercent(debug.SetGCPercent(77)) // a target neither case sets itself
			setGCPercent(func(k string) string {
				if k == "GOGC" {
					return tt.gogc
				}
				return ""
			})
			if got := gogc(t); got != tt.want {
				t.Errorf("GC target %d, want %d", got, tt.want)
			}
		})
	}
}
