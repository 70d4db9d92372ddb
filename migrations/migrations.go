package migrations

import "embed"

// FS holds the goose SQL migrations, at its root, named NNNNN_name.sql.
//
//go:embed *.sql
var FS embed.FS
