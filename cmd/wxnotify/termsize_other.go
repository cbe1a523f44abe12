//go:build !unix

package main

import "io"

// terminalColumns is 0 (unknown) where the terminal's size is not read:
// $COLUMNS, else defaultColumns, is used.
func terminalColumns(io.Writer) int { return 0 }
