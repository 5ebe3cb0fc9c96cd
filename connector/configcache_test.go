package connector

import (
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
)

// countingPrepare returns a prepare function that counts its calls and finds a violation in
// the configuration "bad".
func countingPrepare(calls *atomic.Int64) func([]byte) (string, []Violation) {
	return func(raw []byte) (string, []Violation) {
		calls.Add(1)
		if string(raw) == "bad" {
			return "", []Violation{{Field: "", Description: "is bad"}}
		}
		return "prepared " + string(raw), nil
	}
}

func TestConfigCacheHitsAndMisses(t *testing.T) {
	var calls atomic.Int64
	prep := countingPrepare(&calls)
	c := NewConfigCache[string](0, 0)
	for range 3 {
		v, vs := c.Load([]byte(`{"a":1}`), prep)
		if v != `prepared {"a":1}` || vs != nil {
			t.Fatalf("Load = %q, %v", v, vs)
		}
	}
	if n := calls.Load(); n != 1 {
		t.Fatalf("prepared %d times, want 1", n)
	}
	// Violations are returned, and never cached.
	for range 2 {
		if _, vs := c.Load([]byte("bad"), prep); len(vs) != 1 {
			t.Fatalf("violations = %v", vs)
		}
	}
	if n := calls.Load(); n != 3 {
		t.Fatalf("prepared %d times, want 3 (the bad config each time)", n)
	}
	if c.Len() != 1 {
		t.Fatalf("Len = %d, want 1", c.Len())
	}
	raw := []byte(`{"a":1}`)
	if n := testing.AllocsPerRun(100, func() { c.Load(raw, prep) }); n != 0 {
		t.Errorf("a hit allocates %v times", n)
	}
}

func TestConfigCacheEvictsLeastRecentlyUsed(t *testing.T) {
	var calls atomic.Int64
	prep := countingPrepare(&calls)
	c := NewConfigCache[string](2, 0)
	load := func(s string) { c.Load([]byte(s), prep) }
	load("a")
	load("b")
	load("a") // a is now the most recently used
	load("c") // evicts b
	if c.Len() != 2 {
		t.Fatalf("Len = %d, want 2", c.Len())
	}
	before := calls.Load()
	load("a")
	load("c")
	if calls.Load() != before {
		t.Fatalf("a or c was evicted")
	}
	load("b")
	if calls.Load() != before+1 {
		t.Fatalf("b was not evicted")
	}
}

func TestConfigCacheBoundsBytes(t *testing.T) {
	var calls atomic.Int64
	prep := countingPrepare(&calls)
	c := NewConfigCache[string](100, 10)
	c.Load([]byte("12345"), prep)
	c.Load([]byte("67890"), prep)
	c.Load([]byte("abcde"), prep) // 15 bytes > 10: evicts the oldest
	if c.Len() != 2 {
		t.Fatalf("Len = %d, want 2", c.Len())
	}
	c.Load([]byte("this is longer than ten bytes"), prep) // never cached
	if c.Len() != 2 {
		t.Fatalf("Len = %d after a config over the byte bound, want 2", c.Len())
	}
}

func TestConfigCacheDisabled(t *testing.T) {
	var calls atomic.Int64
	prep := countingPrepare(&calls)
	c := NewConfigCache[string](-1, 0)
	c.Load([]byte("a"), prep)
	c.Load([]byte("a"), prep)
	if calls.Load() != 2 || c.Len() != 0 {
		t.Fatalf("a disabled cache prepared %d times and holds %d", calls.Load(), c.Len())
	}
	var nilCache *ConfigCache[string]
	if v, _ := nilCache.Load([]byte("a"), prep); v != "prepared a" {
		t.Fatalf("nil cache Load = %q", v)
	}
}

func TestConfigCacheConcurrent(t *testing.T) {
	var calls atomic.Int64
	prep := countingPrepare(&calls)
	c := NewConfigCache[string](8, 0)
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 200 {
				k := strconv.Itoa((g + i) % 12)
				if v, _ := c.Load([]byte(k), prep); v != "prepared "+k {
					panic(fmt.Sprintf("Load(%s) = %q", k, v))
				}
			}
		}()
	}
	wg.Wait()
	if c.Len() > 8 {
		t.Fatalf("Len = %d, over the bound of 8", c.Len())
	}
}
