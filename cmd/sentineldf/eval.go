package main

import "github.com/spf13/cobra"

// STUB: replaced by the real command.
func newEvalCmd(io stdio) *cobra.Command {
	return &cobra.Command{Use: "eval", Short: "not yet implemented"}
}
