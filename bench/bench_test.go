package bench

import (
	"context"
	"fmt"
	"io"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	smsv1 "github.com/sms-connector/sms-connector/gen/connector/sms/v1"
)

// The Go benchmarks of the three paths. Each runs at 1, 16 and 64 concurrent callers
// (b.SetParallelism over GOMAXPROCS; with a GOMAXPROCS that does not divide the number, the
// next multiple runs) and reports, besides ns/op (wall time per send over all callers, so
// 1e9/ns/op is the throughput), the p50 and p99 latency of one send. The emulator runs in a
// child process (-emulator=inproc: in this one), so -benchmem and -cpuprofile see the path
// alone:
//
//	go test -run '^$' -bench . -benchmem ./bench/
//	go test -run '^$' -bench 'GRPCSend/config=per-request' -cpuprofile cpu.out ./bench/ && go tool pprof -top bench.test cpu.out

// benchConcurrency are the caller counts of every benchmark.
var benchConcurrency = []int{1, 16, 64}

// BenchmarkDirectTwilio is path (a): twilio-go's CreateMessage with one shared tuned transport.
func BenchmarkDirectTwilio(b *testing.B) {
	emu := benchEmulator(b)
	tr := NewTransport()
	defer tr.CloseIdleConnections()
	send, err := NewDirect(emu.URL, tr)
	if err != nil {
		b.Fatal(err)
	}
	runCallers(b, send)
}

// BenchmarkConnectorSend is path (b): the Twilio connector in process, with the default
// configuration (shared bytes) and with a per-request copy.
func BenchmarkConnectorSend(b *testing.B) {
	emu := benchEmulator(b)
	for _, mode := range []ConfigMode{ConfigDefault, ConfigPerRequest} {
		b.Run("config="+string(mode), func(b *testing.B) {
			c, err := NewConnector(emu.URL)
			if err != nil {
				b.Fatal(err)
			}
			defer c.Close()
			runCallers(b, ConnectorSender(c, mode, 1))
		})
	}
}

// BenchmarkGRPCSend is path (c) in one process: SendMessage over loopback TCP to the gRPC
// server (package server over the Twilio connector, logging at -serverlog level to nowhere),
// so allocations and the CPU profile cover client and server together.
func BenchmarkGRPCSend(b *testing.B) {
	emu := benchEmulator(b)
	for _, mode := range []ConfigMode{ConfigDefault, ConfigPerRequest, ConfigPerRequestJSON} {
		b.Run("config="+string(mode), func(b *testing.B) {
			addr := startServer(b, emu.URL, newServerLogger(b, *serverLog, io.Discard))
			conn, err := DialGRPC(addr)
			if err != nil {
				b.Fatal(err)
			}
			defer conn.Close()
			runCallers(b, GRPCSender(smsv1.NewSmsConnectorClient(conn), mode, 1))
		})
	}
}

// runCallers runs send as a sub-benchmark per concurrency.
func runCallers(b *testing.B, send SendFunc) {
	for _, conc := range benchConcurrency {
		b.Run(fmt.Sprintf("callers=%d", conc), func(b *testing.B) {
			ctx := context.Background()
			// Warm the connections (and for gRPC, the channel) outside the timer.
			if _, err := Load(ctx, LoadOptions{Concurrency: conc, Duration: 20 * time.Millisecond}, send); err != nil {
				b.Fatal(err)
			}
			var (
				mu      sync.Mutex
				all     []time.Duration
				seq     atomic.Int64
				failed  atomic.Bool
				collect = func(lat []time.Duration) {
					mu.Lock()
					all = append(all, lat...)
					mu.Unlock()
				}
			)
			b.ReportAllocs()
			if conc == 1 {
				lat := make([]time.Duration, 0, 1024)
				for b.Loop() {
					t0 := time.Now()
					if err := send(ctx, int(seq.Add(1))); err != nil {
						b.Fatal(err)
					}
					lat = append(lat, time.Since(t0))
				}
				collect(lat)
			} else {
				procs := runtime.GOMAXPROCS(0)
				b.SetParallelism((conc + procs - 1) / procs)
				b.RunParallel(func(pb *testing.PB) {
					lat := make([]time.Duration, 0, 1024)
					for pb.Next() {
						t0 := time.Now()
						if err := send(ctx, int(seq.Add(1))); err != nil {
							if !failed.Swap(true) {
								b.Error(err)
							}
							continue
						}
						lat = append(lat, time.Since(t0))
					}
					collect(lat)
				})
			}
			b.StopTimer()
			l := Summarize(all)
			b.ReportMetric(float64(l.P50.Nanoseconds()), "p50-ns")
			b.ReportMetric(float64(l.P99.Nanoseconds()), "p99-ns")
		})
	}
}
