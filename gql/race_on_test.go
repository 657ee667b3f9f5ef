//go:build race

package gql

const raceEnabled = true
