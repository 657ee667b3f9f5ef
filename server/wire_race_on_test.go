//go:build race

package server

// raceDetector: the race detector makes sync.Pool drop items, which shows
// up as allocations; the zero-allocation tests skip under it and run in
// make unit's second, non-race pass.
const raceDetector = true
