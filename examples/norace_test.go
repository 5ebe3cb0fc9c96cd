//go:build !race

package examples_test

// raceEnabled runs the skeleton's tests under the race detector when this test runs under it.
const raceEnabled = false
