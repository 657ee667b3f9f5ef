//go:build tools

// Package tools pins the gqlgen generator version in go.mod.
package tools

import _ "github.com/99designs/gqlgen"
