package main

import (
	"io"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sms-connector/sms-connector/bench"
	"github.com/sms-connector/sms-connector/smsplugin"
)

func TestParseFlagsDefaults(t *testing.T) {
	o, err := parseFlags(nil, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	s := o.suite
	if !slices.Equal(s.Paths, []bench.Path{bench.PathDirect, bench.PathConnector, bench.PathGRPC}) ||
		!slices.Equal(s.Configs, []bench.ConfigMode{bench.ConfigDefault, bench.ConfigPerRequest, bench.ConfigPerRequestJSON}) ||
		!slices.Equal(s.Concurrency, []int{1, 16, 64}) {
		t.Errorf("matrix %v %v %v: want every path, every config mode, 1,16,64 callers", s.Paths, s.Configs, s.Concurrency)
	}
	if s.Duration != 3*time.Second || s.Rounds != 1 || s.StartupRuns != 20 || s.Binary != "bin/sms-connector" || o.emulator != "process" {
		t.Errorf("defaults %+v", o)
	}
	if !slices.Contains(s.PluginEnv, smsplugin.MagicCookieKey+"="+smsplugin.MagicCookieValue) {
		t.Errorf("plugin env %v lacks the magic cookie", s.PluginEnv)
	}
}

func TestParseFlags(t *testing.T) {
	o, err := parseFlags(strings.Fields("-paths a,c -configs per-request -concurrency 2,8 -duration 1s -plugin=false"), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	s := o.suite
	if !slices.Equal(s.Paths, []bench.Path{bench.PathDirect, bench.PathGRPC}) ||
		!slices.Equal(s.Configs, []bench.ConfigMode{bench.ConfigPerRequest}) ||
		!slices.Equal(s.Concurrency, []int{2, 8}) || s.Duration != time.Second || s.PluginEnv != nil {
		t.Errorf("parsed %+v", s)
	}
	for _, args := range []string{"-paths x", "-configs none", "-concurrency 0", "-concurrency ,", "-duration 0s", "-emulator elsewhere", "extra"} {
		if _, err := parseFlags(strings.Fields(args), io.Discard); err == nil {
			t.Errorf("parseFlags(%q) succeeded, want an error", args)
		}
	}
}
