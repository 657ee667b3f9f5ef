//go:build !linux

package freeport

import "time"

const claimHold = time.Duration(0)

// claim is a no-op off Linux (no abstract sockets): the random walk alone
// keeps processes apart.
func claim(int) bool { return true }
