//go:build !race

package server

// raceDetector: see wire_race_on_test.go.
const raceDetector = false
