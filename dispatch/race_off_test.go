//go:build !race

package dispatch

const deliverRaceEnabled = false
