package main

import "github.com/spf13/cobra"

// STUB: replaced by the real command.
func newScanCmd(io stdio) *cobra.Command {
	return &cobra.Command{Use: "scan", Short: "not yet implemented"}
}
