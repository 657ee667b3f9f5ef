//go:build !race

package gql

// raceEnabled: the race detector makes sync.Pool drop items, which shows up
// as allocations.
const raceEnabled = false
