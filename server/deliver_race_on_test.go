//go:build race

package server

const deliverRaceEnabled = true
