//go:build !unix

package gql

import "time"

// cpuTime returns -1: CPU time is not measured on this platform.
func cpuTime() time.Duration { return -1 }
