//go:build race

package dispatch

const deliverRaceEnabled = true
