package server

// RaceEnabled reports whether the tests run under the race detector.
const RaceEnabled = raceDetector
