package main

import "github.com/spf13/cobra"

// STUB: replaced by the real command.
func newMbomCmd(io stdio) *cobra.Command {
	return &cobra.Command{Use: "mbom", Short: "not yet implemented"}
}
