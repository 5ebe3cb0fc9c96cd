package bench

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"
)

// LoadOptions configure Load.
type LoadOptions struct {
	// Concurrency is the number of callers, each sending in a closed loop (the next send starts
	// when its previous one has returned). At least 1.
	Concurrency int
	// Duration is how long the measured part runs.
	Duration time.Duration
	// Warmup is how long the callers send before the measured part starts (connections opened,
	// caches and the heap warm). Its sends are not counted.
	Warmup time.Duration
	// OnMeasure, when set, is called just before the measured part starts and Done just after
	// it ends, so the caller can read CPU and memory counters around exactly that window.
	OnMeasure, Done func()
}

// LoadResult is what one Load measured.
type LoadResult struct {
	Concurrency int
	// Sends counts the sends that succeeded in the measured window; Errors those that failed.
	Sends, Errors int
	// FirstError is the first failure, if any.
	FirstError error
	// Elapsed is the measured window: from its start until the last caller's last send returned.
	Elapsed time.Duration
	// Latency summarises the successful sends' latencies.
	Latency Latency
}

// Throughput returns successful sends per second.
func (r *LoadResult) Throughput() float64 {
	if r.Elapsed <= 0 {
		return 0
	}
	return float64(r.Sends) / r.Elapsed.Seconds()
}

// Latency summarises a set of latencies by nearest-rank percentiles.
type Latency struct {
	P50, P90, P99, Max time.Duration
}

// Summarize returns the percentiles of ds, which it sorts in place.
func Summarize(ds []time.Duration) Latency {
	if len(ds) == 0 {
		return Latency{}
	}
	slices.Sort(ds)
	rank := func(p float64) time.Duration {
		i := int(p*float64(len(ds))+0.999999) - 1 // nearest rank: ceil(p*n) - 1
		return ds[min(max(i, 0), len(ds)-1)]
	}
	return Latency{P50: rank(0.50), P90: rank(0.90), P99: rank(0.99), Max: ds[len(ds)-1]}
}

// Load runs send from opts.Concurrency callers, first for the warm-up, then for the measured
// window, and returns what the measured window saw. It fails only on bad options or when ctx
// ends; failed sends are counted, not fatal.
func Load(ctx context.Context, opts LoadOptions, send SendFunc) (*LoadResult, error) {
	if opts.Concurrency < 1 {
		return nil, fmt.Errorf("bench: concurrency %d: must be at least 1", opts.Concurrency)
	}
	if opts.Duration <= 0 {
		return nil, errors.New("bench: duration must be positive")
	}
	if opts.Warmup > 0 {
		if _, err := loadPhase(ctx, opts.Concurrency, opts.Warmup, send, 0); err != nil {
			return nil, err
		}
	}
	if opts.OnMeasure != nil {
		opts.OnMeasure()
	}
	r, err := loadPhase(ctx, opts.Concurrency, opts.Duration, send, 1<<30)
	if opts.Done != nil {
		opts.Done()
	}
	return r, err
}

// worker holds one caller's counts, each caller writing only its own.
type worker struct {
	lat      []time.Duration
	errors   int
	firstErr error
}

// loadPhase runs the callers for d. seqBase offsets the sequence numbers handed to send.
func loadPhase(ctx context.Context, conc int, d time.Duration, send SendFunc, seqBase int) (*LoadResult, error) {
	workers := make([]worker, conc)
	for i := range workers {
		workers[i].lat = make([]time.Duration, 0, 4096)
	}
	start := time.Now()
	deadline := start.Add(d)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			wk := &workers[w]
			for i := 0; ; i++ {
				t0 := time.Now()
				if !t0.Before(deadline) || ctx.Err() != nil {
					return
				}
				err := send(ctx, seqBase+i*conc+w)
				if err != nil {
					wk.errors++
					if wk.firstErr == nil {
						wk.firstErr = err
					}
					continue
				}
				wk.lat = append(wk.lat, time.Since(t0))
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	r := &LoadResult{Concurrency: conc, Elapsed: elapsed}
	var all []time.Duration
	for i := range workers {
		wk := &workers[i]
		all = append(all, wk.lat...)
		r.Errors += wk.errors
		if r.FirstError == nil {
			r.FirstError = wk.firstErr
		}
	}
	r.Sends = len(all)
	r.Latency = Summarize(all)
	return r, nil
}
