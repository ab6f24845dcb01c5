// Package migrations holds the numbered goose SQL files that build the schema.
// They are embedded so the binary migrates itself on start (see store.Migrate).
package migrations

import "embed"

// FS holds every migration file, applied in the order of their numbers.
//
//go:embed *.sql
var FS embed.FS
